import { kvVerbs, opModeOf } from '@conclave/protocol';
import { assert, defaultLimits as raftLimits } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { type AutopilotSettings, autopilotSettingsFromWire, autopilotSettingsToWire } from './autopilot.js';
import { commandProblem, type PrimitiveCommand, type PrimitiveOutcome } from './primitives/engine.js';
import type { FsmError } from './quota.js';
import { restoreFromWire, restoreToWire } from './restore-wire.js';
import type { KvOp, KvVerb, SessionEntry, SessionSpec, TxnOutcome } from './types.js';

/** A command of Conclave's replicated state machine, as proposed to one Raft group. */
export type FsmCommand =
  /** One write: set | cas | lock | unlock | delete | delete-tree | delete-cas. */
  | { readonly type: 'kv'; readonly op: KvOp }
  | { readonly type: 'txn'; readonly ops: readonly KvOp[] }
  | { readonly type: 'session-create'; readonly session: SessionSpec; readonly createIndex: number | null }
  | { readonly type: 'session-destroy'; readonly id: string }
  /** A coordination primitive's write (fsm/primitives/): checked by the API before it is proposed. */
  | ({ readonly type: 'prim' } & PrimitiveCommand)
  /** Autopilot's settings (group 0 only); with `cas`, only if they were last changed at that index (0: never set). */
  | { readonly type: 'autopilot-config'; readonly settings: AutopilotSettings; readonly cas: number | null }
  // A restore of the group from a user snapshot (fsm/restore.ts): staged, then swapped in whole.
  /** Drops any staged restore and starts this one. */
  | { readonly type: 'restore-begin'; readonly restoreId: string }
  /** One snapshot part (seq 0: the header), decoded into staged rows at apply. */
  | {
      readonly type: 'restore-chunk';
      readonly restoreId: string;
      readonly seq: number;
      readonly data: Uint8Array;
    }
  /**
   * Consecutive parts of one group, `seq` being the first's: applied as that many chunks in
   * order, all or none (a refused part refuses the entry and drops the staging). One Raft
   * round carries several parts (fsm/restore-wire.ts bounds them: restoreBatchPartsMax,
   * restoreBatchBytesMax).
   */
  | {
      readonly type: 'restore-batch';
      readonly restoreId: string;
      readonly seq: number;
      readonly parts: readonly Uint8Array[];
    }
  /** Swaps the staged rows in if `parts` parts of `bytes` bytes with this chained digest arrived (fsm/parts-digest.ts). */
  | {
      readonly type: 'restore-commit';
      readonly restoreId: string;
      readonly parts: number;
      readonly bytes: number;
      /** 64 hex digits. */
      readonly digest: string;
    }
  /** Drops the staging if it is this restore's. */
  | { readonly type: 'restore-abort'; readonly restoreId: string }
  /**
   * A restore step of the previous release's format (begin [type, id, bytes, sha256], commit
   * [type, id]) still in a WAL: decoded, never proposed, and refused (fsm/restore.ts).
   */
  | { readonly type: 'restore-legacy'; readonly restoreId: string; readonly step: 'begin' | 'commit' };

/**
 * What applying a command gave. `error` is an expected refusal the service reports with its
 * code (a failed cas or lock is not one: it is `ok: false` with no error, as in Consul).
 */
export type FsmResult =
  | {
      readonly type: 'kv';
      readonly ok: boolean;
      readonly index: number;
      readonly error: FsmError | null;
    }
  | { readonly type: 'txn'; readonly outcome: TxnOutcome; readonly error: null }
  /** Refused whole (fsm/quota.ts): no op ran. */
  | { readonly type: 'txn'; readonly outcome: null; readonly error: FsmError }
  | { readonly type: 'session-create'; readonly session: SessionEntry; readonly error: null }
  | { readonly type: 'session-create'; readonly session: null; readonly error: FsmError }
  | {
      readonly type: 'session-destroy';
      readonly existed: boolean;
      readonly released: readonly { key: string; lockDelayMs: number }[];
    }
  | { readonly type: 'autopilot-config'; readonly ok: boolean; readonly index: number }
  /** A primitive's result, or its refusal (`error`), at Raft index `index`. */
  | ({ readonly type: 'prim'; readonly index: number } & PrimitiveOutcome)
  /** A primitive write refused whole by the group's bound (fsm/quota.ts). */
  | { readonly type: 'prim'; readonly index: number; readonly result: null; readonly error: FsmError }
  /** `error` says why a restore step was refused; a refused step changed nothing. */
  | { readonly type: 'restore'; readonly ok: boolean; readonly error: string | null };

/**
 * The encoding's version, first in every command. A server that reads a version it does
 * not know must stop rather than skip the entry, so a new version ships only once every
 * server can read it.
 */
export const commandVersion = 1;

export const writeVerbs: ReadonlySet<KvVerb> = new Set<KvVerb>([
  'set',
  'cas',
  'lock',
  'unlock',
  'delete',
  'delete-tree',
  'delete-cas',
]);
/** Every KV verb a transaction may hold. */
export const allVerbs: ReadonlySet<KvVerb> = new Set<KvVerb>(kvVerbs);
/** Verbs that compare against a ModifyIndex and so must carry one. */
const indexVerbs: ReadonlySet<KvVerb> = new Set<KvVerb>(['cas', 'delete-cas', 'check-index']);

// Records off: the bytes depend only on the values, never on what this encoder saw before.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** [verb, key, value, flags, index, session]: a fixed shape, so equal ops encode equally. */
type OpWire = [string, string, Uint8Array | null, number | null, number | null, string | null];
type SessionWire = [string, string, string, number, string, number];

/** Encodes a command for a Raft proposal: versioned, never empty. Asserts a well-formed command. */
export function encodeCommand(command: FsmCommand): Uint8Array {
  switch (command.type) {
    case 'kv':
      assert(writeVerbs.has(command.op.verb), () => `a kv command writes; ${command.op.verb} does not`);
      return packr.pack([commandVersion, 'kv', opToWire(command.op)]);
    case 'txn':
      return packr.pack([commandVersion, 'txn', command.ops.map(opToWire)]);
    case 'session-create': {
      const s = command.session;
      const wire: SessionWire = [s.id, s.name, s.node, s.ttlSeconds, s.behavior, s.lockDelayMs];
      checkSession(wire);
      checkIndexOrNull(command.createIndex, 'createIndex');
      return packr.pack([commandVersion, 'session-create', wire, command.createIndex]);
    }
    case 'session-destroy':
      assert(typeof command.id === 'string', 'session-destroy names a session');
      return packr.pack([commandVersion, 'session-destroy', command.id]);
    case 'autopilot-config':
      checkIndexOrNull(command.cas, 'cas');
      return packr.pack([
        commandVersion,
        'autopilot-config',
        autopilotSettingsToWire(command.settings),
        command.cas,
      ]);
    case 'prim': {
      const { kind, name, op, args, session, seq } = command;
      checkPrim(command);
      return packr.pack([commandVersion, 'prim', kind, name, op, args, session, seq]);
    }
    case 'restore-begin':
    case 'restore-chunk':
    case 'restore-commit':
    case 'restore-abort':
      return packr.pack([commandVersion, ...restoreToWire(command)]);
    case 'restore-batch': {
      const data = packr.pack([commandVersion, ...restoreToWire(command)]);
      // restoreBatchFramingBytesMax leaves room for the framing: a batch always fits a proposal.
      assert(data.byteLength <= raftLimits.proposalBytesMax, 'restore-batch: encoded within a Raft proposal');
      return data;
    }
    case 'restore-legacy':
      assert(false, 'a legacy restore step is only ever decoded from an old entry, never proposed');
  }
}

/** Decodes a command; an unknown version or type or a malformed field fails an assertion. */
export function decodeCommand(data: Uint8Array): FsmCommand {
  const decoded: unknown = packr.unpack(data);
  assert(Array.isArray(decoded) && decoded.length >= 2, 'a command is an array [version, type, ...]');
  const [version, type] = decoded as unknown[];
  assert(version === commandVersion, () => `unknown command version ${String(version)}`);
  switch (type) {
    case 'kv': {
      assert(decoded.length === 3, 'kv: [version, type, op]');
      const op = opFromWire(decoded[2]);
      assert(writeVerbs.has(op.verb), () => `a kv command writes; ${op.verb} does not`);
      return { type: 'kv', op };
    }
    case 'txn': {
      assert(decoded.length === 3 && Array.isArray(decoded[2]), 'txn: [version, type, ops]');
      return { type: 'txn', ops: (decoded[2] as unknown[]).map(opFromWire) };
    }
    case 'session-create': {
      assert(
        decoded.length === 4 && Array.isArray(decoded[2]),
        'session-create: [version, type, session, index]',
      );
      const wire = decoded[2] as unknown[];
      checkSession(wire);
      const createIndex: unknown = decoded[3];
      checkIndexOrNull(createIndex, 'createIndex');
      const [id, name, node, ttlSeconds, behavior, lockDelayMs] = wire;
      return {
        type: 'session-create',
        session: { id, name, node, ttlSeconds, behavior, lockDelayMs },
        createIndex,
      };
    }
    case 'session-destroy':
      assert(decoded.length === 3 && typeof decoded[2] === 'string', 'session-destroy: [version, type, id]');
      return { type: 'session-destroy', id: decoded[2] };
    case 'autopilot-config': {
      assert(decoded.length === 4, 'autopilot-config: [version, type, settings, cas]');
      const cas: unknown = decoded[3];
      checkIndexOrNull(cas, 'cas');
      return { type: 'autopilot-config', settings: autopilotSettingsFromWire(decoded[2]), cas };
    }
    case 'prim': {
      assert(decoded.length === 8, 'prim: [version, type, kind, name, op, args, session, seq]');
      const [, , kind, name, op, args, session, seq] = decoded as unknown[];
      assert(typeof kind === 'string' && typeof name === 'string' && typeof op === 'string', 'prim: names');
      assert(typeof args === 'object' && args !== null, 'prim: args is a map');
      assert(session === null || typeof session === 'string', 'prim: session is an id or null');
      assert(seq === null || Number.isSafeInteger(seq), 'prim: seq is an integer or null');
      const command = {
        type: 'prim',
        kind,
        name,
        op,
        args: copyArgs(args as Record<string, unknown>),
        session,
        seq,
      } as Extract<FsmCommand, { type: 'prim' }>;
      checkPrim(command);
      return command;
    }
    case 'restore-begin':
    case 'restore-chunk':
    case 'restore-batch':
    case 'restore-commit':
    case 'restore-abort':
      return restoreFromWire(decoded.slice(1));
    default:
      assert(false, () => `unknown command type ${String(type)}`);
  }
}

/**
 * Asserts a primitive command the FSM can apply: well-formed (commandProblem), a write (a
 * read in the log would fail every replica's apply, at every replay), and a seq only with a
 * session, from 1 (applyPrimitive's exactly-once).
 */
function checkPrim(command: Extract<FsmCommand, { type: 'prim' }>): void {
  const { session, seq } = command;
  assert(commandProblem(command) === null, () => `prim: ${commandProblem(command)}`);
  const mode = opModeOf(command);
  assert(
    mode === 'write' || mode === 'gather-write',
    () => `prim: ${command.kind} ${command.op} is a ${String(mode)}, not a write`,
  );
  assert(
    seq === null || (session !== null && Number.isSafeInteger(seq) && seq >= 1),
    'prim: a seq is an integer >= 1, with a session',
  );
}

/** The args with their bytes copied: the decoder hands views of the entry's buffer. */
function copyArgs(args: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(args)) {
    copy[field] = value instanceof Uint8Array ? new Uint8Array(value) : value;
  }
  return copy;
}

function opToWire(op: KvOp): OpWire {
  const wire: OpWire = [
    op.verb,
    op.key,
    op.value ?? null,
    op.flags ?? null,
    op.index ?? null,
    op.session ?? null,
  ];
  checkOp(wire);
  return wire;
}

function opFromWire(wire: unknown): KvOp {
  assert(Array.isArray(wire), 'an op is an array');
  checkOp(wire);
  const [verb, key, value, flags, index, session] = wire;
  // Copy the value: the decoder hands a view of the entry's buffer, which is not ours to keep.
  return {
    verb,
    key,
    ...(value === null ? {} : { value: new Uint8Array(value) }),
    ...(flags === null ? {} : { flags }),
    ...(index === null ? {} : { index }),
    ...(session === null ? {} : { session }),
  };
}

function checkOp(
  wire: unknown[],
): asserts wire is [KvVerb, string, Uint8Array | null, number | null, number | null, string | null] {
  assert(wire.length === 6, 'an op has six fields');
  const [verb, key, value, flags, index, session] = wire;
  assert(typeof verb === 'string' && allVerbs.has(verb as KvVerb), () => `unknown KV verb ${String(verb)}`);
  assert(typeof key === 'string', 'an op key is a string');
  assert(value === null || value instanceof Uint8Array, 'an op value is bytes');
  assert(
    flags === null || (Number.isSafeInteger(flags) && (flags as number) >= 0),
    'flags: a safe integer >= 0',
  );
  checkIndexOrNull(index, 'index');
  assert(!indexVerbs.has(verb as KvVerb) || index !== null, () => `${String(verb)} needs an index`);
  assert(session === null || typeof session === 'string', 'an op session is a string');
}

function checkSession(
  wire: unknown[],
): asserts wire is SessionWire & [string, string, string, number, SessionSpec['behavior'], number] {
  assert(wire.length === 6, 'a session has six fields');
  const [id, name, node, ttlSeconds, behavior, lockDelayMs] = wire;
  assert(typeof id === 'string' && id.length > 0, 'a session id is a non-empty string');
  assert(typeof name === 'string' && typeof node === 'string', 'session name and node are strings');
  assert(Number.isSafeInteger(ttlSeconds) && (ttlSeconds as number) >= 0, 'ttlSeconds: a safe integer >= 0');
  assert(
    behavior === 'release' || behavior === 'delete',
    () => `unknown session behavior ${String(behavior)}`,
  );
  assert(
    Number.isSafeInteger(lockDelayMs) && (lockDelayMs as number) >= 0,
    'lockDelayMs: a safe integer >= 0',
  );
}

function checkIndexOrNull(index: unknown, what: string): asserts index is number | null {
  assert(
    index === null || (Number.isSafeInteger(index) && (index as number) >= 0),
    () => `${what}: a safe integer >= 0`,
  );
}
