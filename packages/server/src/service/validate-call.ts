import { ConclaveError } from '../errors.js';
import {
  allVerbs,
  commandProblem,
  type EventsRead,
  type FsmCommand,
  kvRowBytes,
  type PrimitiveCommand,
  snapshotRowBytesMax,
  writeVerbs,
} from '../fsm/index.js';
import {
  restoreBatchBytesMax,
  restoreBatchPartsMax,
  restoreChunkBytesMax,
  restoreGroupBytesMax,
  restoreIdBytesMax,
} from '../fsm/restore-wire.js';
import type { GroupCall, GroupQuery } from './calls.js';
import { type KvOp, type KvVerb, type ReadRequest, type SessionSpec, txnOpsMaxCeiling } from './types.js';

/**
 * A call that arrived from the network. Everything is checked before it can reach Raft: an
 * ill-formed command would be replicated to every server, and the state machine asserts on
 * what it does not understand, which would stop them all.
 */
export function parseGroupCall(value: unknown): GroupCall {
  const call = record(value, 'call');
  switch (call.kind) {
    case 'apply':
      return { kind: 'apply', command: parseCommand(call.command) };
    case 'read':
      return { kind: 'read', query: parseQuery(call.query), read: parseReadRequest(call.read) };
    case 'renew':
      return { kind: 'renew', id: text(call.id, 'renew.id') };
    case 'status':
      return { kind: 'status' };
    case 'transfer-leader':
      return { kind: 'transfer-leader', to: text(call.to, 'transfer-leader.to') };
    case 'remove-peer':
      return { kind: 'remove-peer', nodeId: text(call.nodeId, 'remove-peer.nodeId') };
    case 'snapshot-open':
      if (typeof call.stale !== 'boolean') throw bad('snapshot-open.stale must be a boolean');
      return { kind: 'snapshot-open', stale: call.stale };
    case 'snapshot-read':
      return {
        kind: 'snapshot-read',
        cursorId: text(call.cursorId, 'snapshot-read.cursorId'),
        bytesMax: uint(call.bytesMax, 'snapshot-read.bytesMax'),
      };
    case 'snapshot-close':
      return { kind: 'snapshot-close', cursorId: text(call.cursorId, 'snapshot-close.cursorId') };
    default:
      throw bad(
        `call.kind must be apply, read, renew, status, transfer-leader, remove-peer or snapshot-open, -read or -close, got ${JSON.stringify(call.kind)}`,
      );
  }
}

// The state machine's own verb sets: a call it would assert on is refused here first.
const verbs = allVerbs;
const singleVerbs = writeVerbs;
// Any server's txnOpsMax: the server that took the request applied its own.
const txnOpsMax = txnOpsMaxCeiling;

function parseCommand(value: unknown): FsmCommand {
  const command = record(value, 'command');
  switch (command.type) {
    case 'kv': {
      const op = parseOp(command.op, 'command.op');
      if (!singleVerbs.has(op.verb)) throw bad(`command.op.verb ${op.verb} is not a single write`);
      return { type: 'kv', op };
    }
    case 'txn': {
      if (!Array.isArray(command.ops) || command.ops.length > txnOpsMax) {
        throw bad(`command.ops must be an array of at most ${txnOpsMax}`);
      }
      return { type: 'txn', ops: command.ops.map((op, i) => parseOp(op, `command.ops[${i}]`)) };
    }
    case 'session-create': {
      const createIndex =
        command.createIndex === null ? null : uint(command.createIndex, 'command.createIndex');
      return { type: 'session-create', session: parseSession(command.session), createIndex };
    }
    case 'session-destroy':
      return { type: 'session-destroy', id: text(command.id, 'command.id') };
    case 'autopilot-config': {
      const s = record(command.settings, 'command.settings');
      if (typeof s.cleanupDeadServers !== 'boolean')
        throw bad('command.settings.cleanupDeadServers must be a boolean');
      const settings = {
        cleanupDeadServers: s.cleanupDeadServers,
        lastContactThresholdMs: uint(s.lastContactThresholdMs, 'settings.lastContactThresholdMs'),
        maxTrailingLogs: uint(s.maxTrailingLogs, 'settings.maxTrailingLogs'),
        minQuorum: uint(s.minQuorum, 'settings.minQuorum'),
        serverStabilizationTimeMs: uint(s.serverStabilizationTimeMs, 'settings.serverStabilizationTimeMs'),
        deadServerThresholdMs: uint(s.deadServerThresholdMs, 'settings.deadServerThresholdMs'),
      };
      const cas = command.cas === null ? null : uint(command.cas, 'command.cas');
      return { type: 'autopilot-config', settings, cas };
    }
    case 'prim': {
      const primitive = parsePrimitive(command, 'command');
      const seq = command.seq === null ? null : uint(command.seq, 'command.seq');
      const session = command.session === null ? null : text(command.session, 'command.session');
      const problem = commandProblem({ ...primitive, session });
      if (problem !== null) throw bad(`command: ${problem}`);
      return { type: 'prim', ...primitive, session, seq };
    }
    case 'restore-begin':
    case 'restore-chunk':
    case 'restore-batch':
    case 'restore-commit':
    case 'restore-abort':
      return parseRestoreStep(command);
    default:
      throw bad(`command.type ${JSON.stringify(command.type)} is unknown`);
  }
}

/** A primitive call's kind, name, op and args; `commandProblem` checks them further. */
function parsePrimitive(
  value: Record<string, unknown>,
  name: string,
): Pick<PrimitiveCommand, 'kind' | 'name' | 'op' | 'args'> {
  const args = record(value.args, `${name}.args`);
  for (const [field, arg] of Object.entries(args)) {
    // A value past the snapshot's row bound would trip the encoder's assertion.
    if (arg instanceof Uint8Array && arg.byteLength > snapshotRowBytesMax / 2) {
      throw bad(`${name}.args.${field} is over ${snapshotRowBytesMax / 2} bytes`);
    }
  }
  return {
    kind: text(value.kind, `${name}.kind`) as PrimitiveCommand['kind'],
    name: text(value.name, `${name}.name`),
    op: text(value.op, `${name}.op`),
    args,
  };
}

function parseOp(value: unknown, name: string): KvOp {
  const op = record(value, name);
  const verb = op.verb;
  if (typeof verb !== 'string' || !verbs.has(verb as KvVerb)) throw bad(`${name}.verb is not a KV verb`);
  const parsed: KvOp = {
    verb: verb as KvVerb,
    key: text(op.key, `${name}.key`),
    ...(op.value === undefined ? {} : { value: bytes(op.value, `${name}.value`) }),
    ...(op.flags === undefined ? {} : { flags: uint(op.flags, `${name}.flags`) }),
    ...(op.index === undefined ? {} : { index: uint(op.index, `${name}.index`) }),
    ...(op.session === undefined ? {} : { session: text(op.session, `${name}.session`) }),
  };
  // A row past the snapshot's row bound would trip the encoder's assertion at the next snapshot.
  const row = { key: parsed.key, value: parsed.value ?? new Uint8Array(), session: parsed.session ?? null };
  if (kvRowBytes(row) > snapshotRowBytesMax)
    throw bad(`${name} is over ${snapshotRowBytesMax} bytes as a row`);
  return parsed;
}

function parseSession(value: unknown): SessionSpec {
  const s = record(value, 'command.session');
  const behavior = s.behavior;
  if (behavior !== 'release' && behavior !== 'delete')
    throw bad('command.session.behavior must be release or delete');
  return {
    id: text(s.id, 'session.id'),
    name: text(s.name, 'session.name', { empty: true }),
    node: text(s.node, 'session.node', { empty: true }),
    ttlSeconds: uint(s.ttlSeconds, 'session.ttlSeconds'),
    behavior,
    lockDelayMs: uint(s.lockDelayMs, 'session.lockDelayMs'),
  };
}

function parseQuery(value: unknown): GroupQuery {
  const q = record(value, 'query');
  switch (q.kind) {
    case 'get':
      return { kind: 'get', key: text(q.key, 'query.key') };
    case 'list':
      return { kind: 'list', prefix: text(q.prefix, 'query.prefix', { empty: true }) };
    case 'keys':
      return {
        kind: 'keys',
        prefix: text(q.prefix, 'query.prefix', { empty: true }),
        separator: q.separator === null ? null : text(q.separator, 'query.separator'),
      };
    case 'session':
      return { kind: 'session', id: text(q.id, 'query.id') };
    case 'sessions':
      return { kind: 'sessions', node: q.node === null ? null : text(q.node, 'query.node') };
    case 'autopilot-config':
      return { kind: 'autopilot-config' };
    case 'primitive-events': {
      const r = record(q.read, 'query.read');
      const read = {
        kind: text(r.kind, 'query.read.kind') as EventsRead['kind'],
        name: text(r.name, 'query.read.name'),
        after: uint(r.after, 'query.read.after'),
        ...(r.key === undefined ? {} : { key: text(r.key, 'query.read.key') }),
      };
      const args = { after: read.after, ...(read.key === undefined ? {} : { key: read.key }) };
      const problem = commandProblem({ kind: read.kind, name: read.name, op: 'events', args, session: null });
      if (problem !== null) throw bad(`query.read: ${problem}`);
      return { kind: 'primitive-events', read };
    }
    case 'primitive': {
      const read = parsePrimitive(record(q.read, 'query.read'), 'query.read');
      const problem = commandProblem({ ...read, session: null });
      if (problem !== null) throw bad(`query.read: ${problem}`);
      return { kind: 'primitive', read };
    }
    default:
      throw bad(`query.kind ${JSON.stringify(q.kind)} is unknown`);
  }
}

function parseReadRequest(value: unknown): ReadRequest {
  const r = record(value, 'read');
  const consistency = r.consistency;
  if (consistency !== 'default' && consistency !== 'consistent' && consistency !== 'stale') {
    throw bad('read.consistency must be default, consistent or stale');
  }
  const block =
    r.block === null
      ? null
      : (() => {
          const b = record(r.block, 'read.block');
          return { index: uint(b.index, 'read.block.index'), waitMs: uint(b.waitMs, 'read.block.waitMs') };
        })();
  const maxStaleMs = r.maxStaleMs === null ? null : uint(r.maxStaleMs, 'read.maxStaleMs');
  return { consistency, maxStaleMs, block };
}

/**
 * The shapes and limits the FSM asserts (fsm/restore-wire.ts), refused here first. The
 * parts themselves are not decoded here: the FSM refuses a malformed one deterministically.
 */
function parseRestoreStep(command: Record<string, unknown>): FsmCommand {
  const restoreId = text(command.restoreId, 'command.restoreId');
  if (restoreId.length > restoreIdBytesMax)
    throw bad(`command.restoreId is over ${restoreIdBytesMax} characters`);
  switch (command.type) {
    case 'restore-begin':
      return { type: 'restore-begin', restoreId };
    case 'restore-abort':
      return { type: 'restore-abort', restoreId };
    case 'restore-chunk': {
      const data = bytes(command.data, 'command.data');
      if (data.byteLength > restoreChunkBytesMax)
        throw bad(`command.data is over ${restoreChunkBytesMax} bytes`);
      return { type: 'restore-chunk', restoreId, seq: uint(command.seq, 'command.seq'), data };
    }
    case 'restore-batch': {
      const seq = uint(command.seq, 'command.seq');
      const list = command.parts;
      if (!Array.isArray(list) || list.length < 1 || list.length > restoreBatchPartsMax) {
        throw bad(`command.parts must be an array of 1-${restoreBatchPartsMax} parts`);
      }
      let total = 0;
      const parts = list.map((value: unknown, i) => {
        const part = bytes(value, `command.parts[${i}]`);
        if (part.byteLength > restoreChunkBytesMax)
          throw bad(`command.parts[${i}] is over ${restoreChunkBytesMax} bytes`);
        total += part.byteLength;
        return part;
      });
      if (total > restoreBatchBytesMax)
        throw bad(`command.parts are over restoreBatchBytesMax (${restoreBatchBytesMax} bytes) in all`);
      if (!Number.isSafeInteger(seq + parts.length)) throw bad('command.seq is too large');
      return { type: 'restore-batch', restoreId, seq, parts };
    }
    default: {
      const parts = uint(command.parts, 'command.parts');
      if (parts < 1) throw bad('command.parts must be at least 1 (the header)');
      const size = uint(command.bytes, 'command.bytes');
      if (size > restoreGroupBytesMax)
        throw bad(`command.bytes is over restoreGroupBytesMax (${restoreGroupBytesMax})`);
      const digest = text(command.digest, 'command.digest');
      if (!/^[0-9a-f]{64}$/u.test(digest)) throw bad('command.digest must be 64 hex digits');
      return { type: 'restore-commit', restoreId, parts, bytes: size, digest };
    }
  }
}

function record(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(`${name} must be an object`);
  return value as Record<string, unknown>;
}

const textBytesMax = 4096;

function text(value: unknown, name: string, options: { empty?: boolean } = {}): string {
  if (
    typeof value !== 'string' ||
    (value.length === 0 && options.empty !== true) ||
    value.length > textBytesMax
  ) {
    throw bad(`${name} must be a string of 1-${textBytesMax} characters`);
  }
  return value;
}

function uint(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw bad(`${name} must be an unsigned integer`);
  }
  return value;
}

function bytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw bad(`${name} must be bytes`);
  return value;
}

function bad(message: string): ConclaveError {
  return new ConclaveError({ code: 'BAD_REQUEST', message: `bad internal call: ${message}` });
}
