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

/** Encoding: one byte of type, then the node id as ASCII. Versioned by the type byte space. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  assert(isValidNodeId(change.nodeId), () => `invalid node id ${JSON.stringify(change.nodeId)}`);
  const out = new Uint8Array(1 + change.nodeId.length);
  out[0] = typeCodes[change.type];
  for (let i = 0; i < change.nodeId.length; i++) out[i + 1] = change.nodeId.charCodeAt(i);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = typesByCode.get(data[0] ?? 0);
  assert(type !== undefined, () => `unknown conf change type byte ${data[0]}`);
  let nodeId = '';
  for (let i = 1; i < data.length; i++) nodeId += String.fromCharCode(data[i] ?? 0);
  assert(isValidNodeId(nodeId), () => `conf change carries an invalid node id ${JSON.stringify(nodeId)}`);
  return { type, nodeId };
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
