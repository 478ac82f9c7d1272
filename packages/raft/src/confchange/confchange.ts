import { assert, RaftError, RaftErrorCode } from '../errors.js';
import { type ConfChange, ConfChangeType, type ConfState, type NodeId } from '../types.js';

/** Node ids travel inside entries, so they are kept short and printable. */
export const nodeIdBytesMax = 64;
const nodeIdPattern = /^[A-Za-z0-9._:@-]+$/;

export function isValidNodeId(id: string): boolean {
  return id.length > 0 && id.length <= nodeIdBytesMax && nodeIdPattern.test(id);
}

const typeCodes: Record<ConfChangeType, number> = { addVoter: 1, addLearner: 2, removeNode: 3 };
const typesByCode = new Map<number, ConfChangeType>([
  [1, ConfChangeType.AddVoter],
  [2, ConfChangeType.AddLearner],
  [3, ConfChangeType.RemoveNode],
]);

/** The largest context a change may carry: it is replicated in a log entry to every member. */
export const confChangeContextBytesMax = 1024;
/** Set on the type byte when a context follows; type codes stay below it. */
const contextFlag = 0x80;

/**
 * Encoding: one byte of type, then the node id as ASCII. With a context, the type byte has
 * bit 7 set and is followed by the id's length (one byte), the id, then the context bytes.
 * Entries written before contexts existed decode unchanged, and a change without a context
 * still encodes exactly as it always did.
 */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const { nodeId, context } = change;
  assert(isValidNodeId(nodeId), () => `invalid node id ${JSON.stringify(nodeId)}`);
  if (context === undefined) {
    const out = new Uint8Array(1 + nodeId.length);
    out[0] = typeCodes[change.type];
    writeAscii(out, 1, nodeId);
    return out;
  }
  assert(
    context.byteLength <= confChangeContextBytesMax,
    () => `conf change context of ${context.byteLength} bytes exceeds ${confChangeContextBytesMax}`,
  );
  const out = new Uint8Array(2 + nodeId.length + context.byteLength);
  out[0] = typeCodes[change.type] | contextFlag;
  out[1] = nodeId.length;
  writeAscii(out, 2, nodeId);
  out.set(context, 2 + nodeId.length);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const first = data[0] ?? 0;
  const type = typesByCode.get(first & ~contextFlag);
  assert(type !== undefined, () => `unknown conf change type byte ${data[0]}`);
  if ((first & contextFlag) === 0) {
    const nodeId = readAscii(data, 1, data.length);
    assert(isValidNodeId(nodeId), () => `conf change carries an invalid node id ${JSON.stringify(nodeId)}`);
    return { type, nodeId };
  }
  const idEnd = 2 + (data[1] ?? 0);
  assert(data.length >= idEnd, 'conf change ends inside its node id');
  const nodeId = readAscii(data, 2, idEnd);
  assert(isValidNodeId(nodeId), () => `conf change carries an invalid node id ${JSON.stringify(nodeId)}`);
  // A copy, so the change does not pin the buffer the entry arrived in.
  return { type, nodeId, context: data.slice(idEnd) };
}

function writeAscii(out: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
}

function readAscii(data: Uint8Array, from: number, to: number): string {
  let text = '';
  for (let i = from; i < to; i++) text += String.fromCharCode(data[i] ?? 0);
  return text;
}

/**
 * Check a single-server change against the current membership. Changes that would do
 * nothing, or leave no voter, are refused so a caller learns of the mistake.
 */
export function validateConfChange(conf: ConfState, change: ConfChange): RaftError | null {
  const invalid = (message: string): RaftError =>
    new RaftError({ code: RaftErrorCode.ConfChangeInvalid, message });
  if (!isValidNodeId(change.nodeId)) {
    return invalid(`node id must be 1-${nodeIdBytesMax} characters of [A-Za-z0-9._:@-]`);
  }
  if (change.context !== undefined && change.context.byteLength > confChangeContextBytesMax) {
    return invalid(
      `the context of ${change.context.byteLength} bytes exceeds ${confChangeContextBytesMax} bytes`,
    );
  }
  const isVoter = conf.voters.includes(change.nodeId);
  const isLearner = conf.learners.includes(change.nodeId);
  switch (change.type) {
    case ConfChangeType.AddVoter:
      return isVoter ? invalid(`${change.nodeId} is already a voter`) : null;
    case ConfChangeType.AddLearner:
      if (isLearner) return invalid(`${change.nodeId} is already a learner`);
      if (isVoter && conf.voters.length === 1)
        return invalid(`cannot demote ${change.nodeId}: it is the only voter`);
      return null;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return invalid(`${change.nodeId} is not a member`);
      if (isVoter && conf.voters.length === 1)
        return invalid(`cannot remove ${change.nodeId}: it is the only voter`);
      return null;
  }
}

/**
 * The membership after applying `change`. A change that would leave no voter changes
 * nothing: every node reaches the same verdict, so membership stays identical everywhere.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const next = nextConfState(conf, change);
  return next.voters.length === 0 ? conf : next;
}

function nextConfState(conf: ConfState, change: ConfChange): ConfState {
  const without = (ids: readonly NodeId[]): NodeId[] => ids.filter((id) => id !== change.nodeId);
  switch (change.type) {
    case ConfChangeType.AddVoter:
      return { voters: [...without(conf.voters), change.nodeId], learners: without(conf.learners) };
    case ConfChangeType.AddLearner:
      return { voters: without(conf.voters), learners: [...without(conf.learners), change.nodeId] };
    case ConfChangeType.RemoveNode:
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}
