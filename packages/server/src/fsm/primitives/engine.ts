import {
  isPartitionedKind,
  isPrimitiveKind,
  opModeOf,
  type PrimitiveKind,
  primitiveNameCharsMax,
  primitivePageEntriesMax,
  sessionResultsMax,
} from '@conclave/protocol';

import { assert } from '@conclave/raft';
import { Packr } from 'msgpackr';
import type { StoreReader } from '../../state/index.js';
import type { FsmTxn } from '../quota.js';
import { snapshotRowBytesMax } from '../snapshot-limits.js';
import { kvRowBytesOf } from '../snapshot-rows.js';
import { kvsTable, sessionsTable } from '../tables.js';
import type { KvEntry } from '../types.js';
import { argsProblem, textProblem } from './args.js';
import type { PrimitiveEventLog } from './events.js';
import { fenceSource } from './fences.js';
import type { Args, KindMachine, PrimitiveError } from './kind.js';
import { kindMachines } from './registry.js';
import {
  entriesPrefix,
  entryKeyOfRow,
  heldRowOf,
  holdRowKey,
  primitiveRowKey,
  resultsRowKey,
  rowIdentity,
} from './rows.js';
import { planTransaction, type TransactionStep } from './transaction.js';

/** A primitive operation as proposed to one group: a write, or one group's part of a gather-write. */
export interface PrimitiveCommand {
  readonly kind: PrimitiveKind;
  readonly name: string;
  readonly op: string;
  readonly args: Args;
  /** The caller's session: required by some operations, and by exactly-once. */
  readonly session: string | null;
  /** The session's sequence number of this call: a retry with the same number applies once. */
  readonly seq: number | null;
}

/** A primitive read: what a PrimitiveCommand names, without session or seq. */
export type PrimitiveRead = Omit<PrimitiveCommand, 'session' | 'seq'>;

/**
 * A read's value, the version of the row it read (0: none; the newest of the entries for a
 * gather read), and what to watch for a change: the row, or the entries' prefix.
 */
export interface PrimitiveReadResult {
  readonly value: unknown;
  readonly version: number;
  readonly watchKey: string | null;
  readonly watchPrefix: string | null;
}

export type PrimitiveOutcome =
  | { readonly result: unknown; readonly error: null }
  | { readonly result: null; readonly error: PrimitiveError };

// Records off: the bytes depend only on the values, never on what this encoder saw before.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** The arguments of `events`, which every kind has: the version seen, and an entry's key. */
const eventsArgs = {
  whole: { after: 'index?' },
  partitioned: { after: 'index?', key: 'key?' },
} as const;

/** What is wrong with a command, for a person, or null: the API refuses before proposing. */
export function commandProblem(command: Omit<PrimitiveCommand, 'seq'>): string | null {
  const { kind, name, op, args, session } = command;
  if (!isPrimitiveKind(kind)) return `there is no primitive kind ${JSON.stringify(kind)}`;
  const nameProblem = textProblem({ value: name, charsMax: primitiveNameCharsMax });
  if (nameProblem !== null) return `the name ${nameProblem}`;
  const mode = opModeOf({ kind, op });
  if (mode === null) return `${kind} has no operation ${JSON.stringify(op)}`;
  const machine = kindMachines[kind];
  if (mode === 'events') {
    const spec = isPartitionedKind(kind) ? eventsArgs.partitioned : eventsArgs.whole;
    return argsProblem({ spec, args });
  }
  const problem = argsProblem({ spec: machine.args[op] ?? {}, args }) ?? machine.argsRule?.(op, args) ?? null;
  if (problem !== null) return problem;
  if (
    isPartitionedKind(kind) &&
    mode !== 'gather-read' &&
    mode !== 'gather-write' &&
    op !== 'transaction' &&
    args.key === undefined
  ) {
    return 'args.key is required';
  }
  if (session === null && (machine.sessionOps.has(op) || args.ephemeral === true)) {
    return `${kind} ${op}${args.ephemeral === true ? ' with ephemeral' : ''} needs a session`;
  }
  return null;
}

/**
 * Applies a primitive write at `txn.index`: deduplicated by (session, seq), checked against
 * `ifVersion`, run by the kind's machine, stored with its session holds kept in step.
 */
export function applyPrimitive(
  txn: FsmTxn,
  options: { command: PrimitiveCommand; groupId: number },
): PrimitiveOutcome {
  const { command } = options;
  const fence = fenceSource({ txn, groupId: options.groupId });
  assert(
    commandProblem(command) === null,
    () => `a proposed primitive command is well-formed: ${commandProblem(command)}`,
  );
  const { session, seq } = command;
  assert(
    seq === null || (session !== null && Number.isSafeInteger(seq) && seq >= 1),
    'a seq comes with a session',
  );
  if (session !== null && txn.first(sessionsTable, 'id', session) === null) {
    return refused({ code: 'SESSION_EXPIRED', message: `session ${session} expired or was destroyed` });
  }
  if (seq === null || session === null) return run(txn, { command, fence });
  const results = loadResults(txn, session);
  const cached = results.entries.find(([s]) => s === seq);
  if (cached !== undefined) return outcomeFromWire(cached[1]);
  if (seq <= results.floor) {
    return refused({
      code: 'REQUEST_EXPIRED',
      message: `call ${seq} of session ${session} is older than the ${sessionResultsMax} results kept`,
    });
  }
  const outcome = run(txn, { command, fence });
  storeResults(txn, { session, results: remember(results, { seq, outcome }) });
  return outcome;
}

function run(txn: FsmTxn, options: { command: PrimitiveCommand; fence: () => number }): PrimitiveOutcome {
  const { command, fence } = options;
  if (opModeOf(command) === 'gather-write') return clearEntries(txn, command);
  if (command.op === 'transaction') return runTransaction(txn, { command, fence });
  const machine = kindMachines[command.kind];
  const rowKey = rowKeyOf(command);
  const row = txn.first(kvsTable, 'id', rowKey);
  const version = row?.modifyIndex ?? 0;
  const state = row === null ? null : machine.decodeState(packr.unpack(row.value));
  const ifVersion = command.args.ifVersion;
  if (machine.entryVersions !== true && ifVersion !== undefined && ifVersion !== version) {
    return refused({
      code: 'VERSION_MISMATCH',
      message: `${describe(command)} is at version ${version}, not ${String(ifVersion)}`,
    });
  }
  const outcome = machine.apply(command.op, {
    state,
    version,
    args: command.args,
    index: txn.index,
    session: command.session,
    fence,
  });
  if (!outcome.ok) return refused(outcome.error);
  if (!('unchanged' in outcome)) {
    const tooLarge = store(txn, { machine, rowKey, row, before: state, after: outcome.state });
    if (tooLarge !== null) return refused(tooLarge);
  }
  return { result: outcome.result, error: null };
}

/**
 * A map transaction: its steps run in order, each seeing the ones before, and apply all or
 * none. Its keys share a group (the service refuses others with TXN_CROSS_GROUP).
 */
function runTransaction(
  txn: FsmTxn,
  options: { command: PrimitiveCommand; fence: () => number },
): PrimitiveOutcome {
  const { command, fence } = options;
  const machine = kindMachines[command.kind];
  const rowsRead = new Map<string, KvEntry | null>();
  const plan = planTransaction({
    machine,
    steps: command.args.steps as TransactionStep[],
    rowKeyOf: (key) => primitiveRowKey({ kind: command.kind, name: command.name, key }),
    load: (rowKey) => {
      const row = txn.first(kvsTable, 'id', rowKey);
      rowsRead.set(rowKey, row);
      return {
        state: row === null ? null : machine.decodeState(packr.unpack(row.value)),
        version: row?.modifyIndex ?? 0,
      };
    },
    context: { index: txn.index, session: command.session, fence },
  });
  if (!plan.ok) return refused(plan.error);
  // Measured before anything is written, so that a refusal leaves every row as it was.
  for (const row of plan.rows) {
    if (!row.changed || row.after === null) continue;
    const tooLarge = rowSizeProblem({
      rowKey: row.rowKey,
      value: packr.pack(machine.encodeState(row.after)),
    });
    if (tooLarge !== null) return refused(tooLarge);
  }
  for (const row of plan.rows) {
    if (!row.changed) continue;
    const stored = store(txn, {
      machine,
      rowKey: row.rowKey,
      row: rowsRead.get(row.rowKey) ?? null,
      before: row.before,
      after: row.after,
    });
    assert(stored === null, 'a transaction’s rows were measured before it wrote');
  }
  return { result: { results: plan.results, version: txn.index }, error: null };
}

/** One group's part of clearing a partitioned primitive: its entries here, and their holds. */
function clearEntries(txn: FsmTxn, command: PrimitiveCommand): PrimitiveOutcome {
  const machine = kindMachines[command.kind];
  let removed = 0;
  for (const row of txn.prefix(kvsTable, 'id', entriesPrefix(command))) {
    if (entryKeyOfRow({ rowKey: row.key, name: command.name }) === null) continue;
    const before = machine.decodeState(packr.unpack(row.value));
    assert(store(txn, { machine, rowKey: row.key, row, before, after: null }) === null, 'a delete fits');
    removed++;
  }
  return { result: { removed }, error: null };
}

/**
 * Everything `session` held in this group, given up: each primitive it is named in runs
 * its `sessionGone` (a lock passes to the next waiter, an ephemeral entry goes), and its
 * results are forgotten. Afterwards no reserved row names the session, so what the caller
 * does to the session's KV locks (Consul's release or delete) touches user keys only.
 */
export function releaseSessionHolds(
  txn: FsmTxn,
  options: { session: string; index: number; groupId: number },
): void {
  const { session, index } = options;
  const fence = fenceSource({ txn, groupId: options.groupId });
  for (const entry of txn.lookup(kvsTable, 'session', session)) {
    if (entry.key === resultsRowKey(session)) {
      txn.delete(kvsTable, entry.key);
      continue;
    }
    const rowKey = heldRowOf(entry.key);
    if (rowKey === null) continue;
    const row = txn.first(kvsTable, 'id', rowKey);
    assert(row !== null, () => `a hold refers to a stored row: ${JSON.stringify(rowKey)}`);
    const machine = kindMachines[rowIdentity(rowKey).kind];
    const before = machine.decodeState(packr.unpack(row.value));
    const after = machine.sessionGone(before, { session, index, fence });
    assert(after === null || !machine.sessionsOf(after).includes(session), 'a gone session is forgotten');
    // A session's end only shrinks a state (or moves a session from a queue to the holders).
    assert(store(txn, { machine, rowKey, row, before, after }) === null, 'a session’s end fits its row');
  }
}

/**
 * Writes a primitive's new state (or deletes its row) and adds and drops its holds; or,
 * when the state would make a row past the snapshot's row bound, writes nothing and says so.
 */
function store(
  txn: FsmTxn,
  options: {
    machine: KindMachine<unknown>;
    rowKey: string;
    row: KvEntry | null;
    before: unknown;
    after: unknown;
  },
): PrimitiveError | null {
  const { machine, rowKey, row, before, after } = options;
  const index = txn.index;
  if (after === null) {
    if (row !== null) txn.delete(kvsTable, rowKey);
  } else {
    const value = packr.pack(machine.encodeState(after));
    const tooLarge = rowSizeProblem({ rowKey, value });
    if (tooLarge !== null) return tooLarge;
    txn.insert(kvsTable, {
      key: rowKey,
      value,
      flags: 0,
      createIndex: row?.createIndex ?? index,
      modifyIndex: index,
      lockIndex: 0,
      session: null,
    });
  }
  const was = new Set(before === null ? [] : machine.sessionsOf(before));
  const is = new Set(after === null ? [] : machine.sessionsOf(after));
  for (const session of was) if (!is.has(session)) txn.delete(kvsTable, holdRowKey({ session, rowKey }));
  for (const session of is) {
    if (was.has(session)) continue;
    assert(txn.first(sessionsTable, 'id', session) !== null, () => `a hold names a live session ${session}`);
    txn.insert(kvsTable, {
      key: holdRowKey({ session, rowKey }),
      value: new Uint8Array(0),
      flags: 0,
      createIndex: index,
      modifyIndex: index,
      lockIndex: 0,
      session,
    });
  }
  return null;
}

/** The refusal of a state that would make a row past the snapshot's row bound, or null. */
function rowSizeProblem(options: { rowKey: string; value: Uint8Array }): PrimitiveError | null {
  const rowBytes = kvRowBytesOf({
    keyChars: options.rowKey.length,
    valueBytes: options.value.byteLength,
    sessionChars: 0,
  });
  if (rowBytes <= snapshotRowBytesMax) return null;
  return {
    code: 'VALUE_TOO_LARGE',
    message: `the primitive's state would take ${rowBytes} bytes, more than the ${snapshotRowBytesMax} of one row: keep it smaller`,
  };
}

/** A primitive read against one group's state: its value, its index and the row to watch. */
export function readPrimitive(
  reader: Pick<StoreReader, 'first' | 'prefix'>,
  command: PrimitiveRead,
): PrimitiveReadResult {
  const machine = kindMachines[command.kind];
  if (opModeOf(command) === 'gather-read') return readEntries(reader, command);
  const rowKey = rowKeyOf(command);
  const row = reader.first(kvsTable, 'id', rowKey);
  const version = row?.modifyIndex ?? 0;
  const state = row === null ? null : machine.decodeState(packr.unpack(row.value));
  const value = machine.read(command.op, { state, version, args: command.args });
  return { value, version, watchKey: rowKey, watchPrefix: null };
}

/**
 * One group's part of a gather read: its entry count (`size`), or a page of its entries in
 * row order after the entry key `after` (`entries`, `elements`), at most `limit` of them and
 * never more than primitivePageEntriesMax (also when `limit` is absent).
 */
function readEntries(reader: Pick<StoreReader, 'prefix'>, command: PrimitiveRead): PrimitiveReadResult {
  const machine = kindMachines[command.kind];
  const prefix = entriesPrefix(command);
  const rows = reader
    .prefix(kvsTable, 'id', prefix)
    .filter((row) => entryKeyOfRow({ rowKey: row.key, name: command.name }) !== null);
  const version = rows.reduce((max, row) => Math.max(max, row.modifyIndex), 0);
  if (command.op === 'size') {
    const count = machine.entryCount;
    const size =
      count === undefined
        ? rows.length
        : rows.reduce((sum, row) => sum + count(machine.decodeState(packr.unpack(row.value))), 0);
    return { value: { size }, version, watchKey: null, watchPrefix: prefix };
  }
  const after = command.args.after as string | undefined;
  // Optional: a page holds primitivePageEntriesMax entries at most, asked or not.
  const limit = Math.min(
    (command.args.limit as number | undefined) ?? primitivePageEntriesMax,
    primitivePageEntriesMax,
  );
  const start =
    after === undefined
      ? 0
      : rows.findIndex(
          (row) => row.key > primitiveRowKey({ kind: command.kind, name: command.name, key: after }),
        );
  const page = start < 0 ? [] : rows.slice(start, start + limit);
  const entries = page.map((row) => {
    const key = entryKeyOfRow({ rowKey: row.key, name: command.name });
    assert(key !== null, 'a page holds this primitive’s entries');
    return machine.read('entry', {
      state: machine.decodeState(packr.unpack(row.value)),
      version: row.modifyIndex,
      args: { key },
    });
  });
  const more = start >= 0 && start + limit < rows.length;
  return { value: { entries, more }, version, watchKey: null, watchPrefix: prefix };
}

function rowKeyOf(command: Pick<PrimitiveCommand, 'kind' | 'name' | 'args'>): string {
  const { kind, name, args } = command;
  if (!isPartitionedKind(kind)) return primitiveRowKey({ kind, name });
  return primitiveRowKey({ kind, name, key: args.key as string });
}

function describe(command: Pick<PrimitiveCommand, 'kind' | 'name' | 'args'>): string {
  const key = command.args.key;
  return `${command.kind} ${JSON.stringify(command.name)}${typeof key === 'string' ? ` key ${JSON.stringify(key)}` : ''}`;
}

function refused(error: PrimitiveError): PrimitiveOutcome {
  return { result: null, error };
}

/** A result kept for a retry at most; a larger one is kept as a note that the call applied. */
export const sessionResultBytesMax = 4 * 1024;
/** All the results one session keeps in one group at most. */
export const sessionResultsBytesMax = 64 * 1024;

/** A session's remembered results in one group: every seq at or below `floor` is forgotten. */
interface SessionResults {
  readonly floor: number;
  /** [seq, outcome], oldest first, at most sessionResultsMax. */
  readonly entries: readonly (readonly [number, unknown])[];
}

function loadResults(txn: FsmTxn, session: string): SessionResults {
  const row = txn.first(kvsTable, 'id', resultsRowKey(session));
  if (row === null) return { floor: 0, entries: [] };
  const wire: unknown = packr.unpack(row.value);
  assert(
    Array.isArray(wire) && wire.length === 2 && Array.isArray(wire[1]),
    'a results row is [floor, entries]',
  );
  return { floor: wire[0] as number, entries: wire[1] as [number, unknown][] };
}

/**
 * The results with this call's added, the oldest dropped past `sessionResultsMax` calls or
 * `sessionResultsBytesMax` bytes. A result larger than `sessionResultBytesMax` (a map
 * entry's previous value, say) is kept as a note that the call applied, which a retry gets
 * as REQUEST_EXPIRED: the row stays small, and the retry still never applies twice.
 */
function remember(
  results: SessionResults,
  options: { seq: number; outcome: PrimitiveOutcome },
): SessionResults {
  const { seq, outcome } = options;
  let wire = outcomeToWire(outcome);
  const resultBytes = packr.pack(wire).byteLength;
  if (resultBytes > sessionResultBytesMax) {
    wire = outcomeToWire(
      refused({
        code: 'REQUEST_EXPIRED',
        message: `call ${seq} applied, but its result (${resultBytes} bytes) was too large to keep for a retry: read the state`,
      }),
    );
  }
  const entries = [...results.entries, [seq, wire] as const];
  // The row costs its bytes to write anyway; measuring each result once keeps this linear.
  const sizes = entries.map(([, kept]) => packr.pack(kept).byteLength);
  let bytes = sizes.reduce((sum, size) => sum + size, 0);
  let floor = results.floor;
  while (entries.length > sessionResultsMax || bytes > sessionResultsBytesMax) {
    const dropped = entries.shift();
    assert(dropped !== undefined, 'an entry to drop');
    bytes -= sizes.shift() ?? 0;
    floor = Math.max(floor, dropped[0]);
  }
  return { floor, entries };
}

function storeResults(txn: FsmTxn, options: { session: string; results: SessionResults }): void {
  const key = resultsRowKey(options.session);
  const row = txn.first(kvsTable, 'id', key);
  txn.insert(kvsTable, {
    key,
    value: packr.pack([options.results.floor, options.results.entries]),
    flags: 0,
    createIndex: row?.createIndex ?? txn.index,
    modifyIndex: txn.index,
    lockIndex: 0,
    session: options.session,
  });
}

function outcomeToWire(outcome: PrimitiveOutcome): unknown {
  return outcome.error === null
    ? [null, null, outcome.result]
    : [outcome.error.code, outcome.error.message, null];
}

function outcomeFromWire(wire: unknown): PrimitiveOutcome {
  assert(Array.isArray(wire) && wire.length === 3, 'a remembered outcome is [code, message, result]');
  const [code, message, result] = wire as [PrimitiveError['code'] | null, string | null, unknown];
  if (code === null) return { result: ownBytes(result), error: null };
  return refused({ code, message: message ?? '' });
}

/**
 * A decoded result with its bytes copied into plain Uint8Arrays: the decoder hands Buffer
 * views of the results row, which would make a retry's answer differ from the first one
 * (a Buffer encodes to JSON as {type, data}) and keep the stored row's bytes reachable.
 */
function ownBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(ownBytes);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([field, v]) => [field, ownBytes(v)]));
  }
  return value;
}

/** Which changes an event stream wants: a primitive, or (partitioned) one key or all of a group's. */
export interface EventsRead {
  readonly kind: PrimitiveKind;
  readonly name: string;
  /** A partitioned primitive's entry; absent: every entry of the primitive in this group. */
  readonly key?: string | undefined;
  /** The version (Raft index) the stream has seen: changes after it are wanted. */
  readonly after: number;
}

/** One change as a stream sends it: the version, the entry key if partitioned, the state after. */
export interface PrimitiveEvent {
  readonly version: number;
  readonly key?: string;
  /** What the kind's event read answers after the change; null when the entry went. */
  readonly state: unknown;
}

/**
 * The events after `after`, oldest first, or `compacted` when the log no longer reaches
 * back that far (the stream must read the state again and resume from its version).
 */
export function readEvents(options: { log: PrimitiveEventLog; read: EventsRead }): {
  events: PrimitiveEvent[];
  compacted: boolean;
  watchKey: string | null;
  watchPrefix: string | null;
} {
  const { log, read } = options;
  const machine = kindMachines[read.kind];
  const partitioned = isPartitionedKind(read.kind);
  const exact = partitioned && read.key === undefined ? null : rowKeyOf({ ...read, args: { key: read.key } });
  const prefix = exact === null ? entriesPrefix(read) : null;
  const matches = (rowKey: string): boolean =>
    exact !== null
      ? rowKey === exact
      : rowKey.startsWith(prefix ?? '') && entryKeyOfRow({ rowKey, name: read.name }) !== null;
  const changes = log.since({ after: read.after, matches });
  if (changes === null) return { events: [], compacted: true, watchKey: exact, watchPrefix: prefix };
  const events = changes.map((change): PrimitiveEvent => {
    const key = partitioned
      ? (entryKeyOfRow({ rowKey: change.rowKey, name: read.name }) ?? undefined)
      : undefined;
    const state =
      change.value === null
        ? null
        : machine.read(machine.eventOp, {
            state: machine.decodeState(packr.unpack(change.value)),
            version: change.index,
            args: key === undefined ? {} : { key },
          });
    return { version: change.index, ...(key === undefined ? {} : { key }), state };
  });
  return { events, compacted: false, watchKey: exact, watchPrefix: prefix };
}

/** A primitive with a time to live, as of its last write. */
export interface TtlRow {
  readonly rowKey: string;
  readonly kind: PrimitiveKind;
  readonly name: string;
  readonly key?: string;
  /** The write the TTL counts from: an expiry removes the row only if it is still at it. */
  readonly version: number;
  readonly ttlMs: number;
}

/** Every primitive row of the group that has a TTL (a leader arming its deadlines). */
export function ttlRows(reader: Pick<StoreReader, 'prefix'>): TtlRow[] {
  const rows: TtlRow[] = [];
  for (const row of reader.prefix(kvsTable, 'id', '\u0000{')) {
    const ttl = ttlOfRow({ rowKey: row.key, value: row.value, version: row.modifyIndex });
    if (ttl !== null) rows.push(ttl);
  }
  return rows;
}

/**
 * The primitive rows written after `after`, each with its TTL now (null: none, or gone),
 * or null when the event log no longer reaches back that far (arm from ttlRows again).
 */
export function ttlChanges(options: {
  log: PrimitiveEventLog;
  after: number;
}): { rowKey: string; ttl: TtlRow | null }[] | null {
  const changes = options.log.since({ after: options.after, matches: () => true });
  if (changes === null) return null;
  return changes.map((change) => ({
    rowKey: change.rowKey,
    ttl:
      change.value === null
        ? null
        : ttlOfRow({ rowKey: change.rowKey, value: change.value, version: change.index }),
  }));
}

function ttlOfRow(options: { rowKey: string; value: Uint8Array; version: number }): TtlRow | null {
  const identity = rowIdentity(options.rowKey);
  const machine = kindMachines[identity.kind];
  if (machine.ttlOf === undefined) return null;
  const ttlMs = machine.ttlOf(machine.decodeState(packr.unpack(options.value)));
  return ttlMs === null ? null : { rowKey: options.rowKey, ...identity, version: options.version, ttlMs };
}
