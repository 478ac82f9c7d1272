import { assert, type Entry, EntryType } from '@conclave/raft';
import type { StateMachine } from '../host/ports.js';
import { StateStore, type WatchTarget, type WriteTxn } from '../state/index.js';
import type { StoredAutopilot } from './autopilot.js';
import { decodeCommand, type FsmCommand, type FsmResult } from './commands.js';
import { runOp } from './kv-ops.js';
import {
  applyPrimitive,
  type EventsRead,
  type PrimitiveRead,
  type PrimitiveReadResult,
  readEvents,
  readPrimitive,
  type TtlRow,
  ttlChanges,
  ttlRows,
} from './primitives/engine.js';
import { ChangeRecordingTxn, PrimitiveEventLog } from './primitives/events.js';
import { fenceCountIn, keepFenceCount } from './primitives/fences.js';
import {
  checkQuotaLimits,
  type FsmError,
  MeteredTxn,
  type QuotaLimits,
  sessionQuotaError,
  stateQuotaError,
} from './quota.js';
import { RestoreStaging, restoredRows, rowsBytes, type StagedRestoreView } from './restore.js';
import { createSession, destroySession } from './sessions.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotParts,
  encodeSnapshotSteps,
  type FsmState,
} from './snapshot-codec.js';
import { groupSessionsMax, groupStateBytesMaxDefault } from './snapshot-limits.js';
import type { PartsSummary } from './snapshot-parts.js';
import { kvsTable, sessionsTable } from './tables.js';
import type { KvEntry, KvOp, TxnError, TxnOutcome } from './types.js';
import { type FsmQueries, type FsmView, queriesOver } from './view.js';

export interface FsmLimits extends QuotaLimits {
  /** Most blocking queries waiting on this group at once; one more is refused with OVERLOADED. */
  readonly watchersMax: number;
  /** Most keys + prefixes (+1 for sessions) one watch may name. */
  readonly watchTargetsMax: number;
}

/** A user snapshot of one group, encoded one part per `next()` (ConclaveFsm.openSnapshotParts). */
export interface SnapshotParts {
  /** The Raft index the state is at. */
  readonly appliedIndex: number;
  readonly keys: number;
  readonly sessions: number;
  /** The next part: first the header, then each row chunk; null after the last. */
  next(): Uint8Array | null;
}

export const defaultFsmLimits: FsmLimits = {
  watchersMax: 65_536,
  watchTargetsMax: 128,
  groupStateBytesMax: groupStateBytesMaxDefault,
  sessionsMax: groupSessionsMax,
};

/**
 * Conclave's replicated state machine: Consul's KV store and sessions for one Raft group,
 * over the state store. `apply` is deterministic: the same entries give the same state and
 * the same snapshot bytes on every server. Each command runs in one store transaction, so
 * a failed cas, lock or txn changes nothing and wakes no watcher.
 */
export class ConclaveFsm implements StateMachine<FsmResult>, FsmQueries {
  private readonly store: StateStore;
  private readonly limits: FsmLimits;
  private applied = 0;
  /** A user snapshot being restored through Raft: staged here until its commit. */
  private readonly restoreStaging: RestoreStaging;
  /** Autopilot's settings (group 0): one small record, replaced whole, so outside the tables. */
  private autopilotRecord: StoredAutopilot | null = null;
  /**
   * Estimated bytes (fsm/snapshot-rows.ts) of every kv and session row: kept up to date by
   * each committed write's delta (MeteredTxn) and counted afresh only when tables are replaced.
   */
  private liveBytes = 0;

  /** The group this machine runs: fences carry it (primitives/fences.ts). */
  private readonly groupId: number;
  /** Recent changes of the primitives, for event streams (not replicated state). */
  private readonly events = new PrimitiveEventLog();

  constructor(limits: Partial<FsmLimits> = {}, options: { groupId?: number } = {}) {
    this.groupId = options.groupId ?? 0;
    this.limits = { ...defaultFsmLimits, ...limits };
    checkQuotaLimits(this.limits);
    const { watchersMax, watchTargetsMax } = this.limits;
    this.store = new StateStore({
      tables: [kvsTable, sessionsTable],
      limits: { watchersMax, watchTargetsMax },
    });
    this.restoreStaging = new RestoreStaging(this.limits);
  }

  /** Estimated bytes of this group's kv and session rows: what groupStateBytesMax bounds. */
  get stateBytes(): number {
    return this.liveBytes;
  }

  /** Estimated bytes of the rows a restore in progress has staged (0 without one). */
  get stagedBytes(): number {
    return this.restoreStaging.stagedBytes;
  }

  /** The restore staged in this group (O(1)): its id, parts so far and rows' bytes; null if none. */
  stagedRestore(): StagedRestoreView | null {
    return this.restoreStaging.view();
  }

  apply(entry: Entry): FsmResult {
    assert(entry.type === EntryType.Normal, () => `entry ${entry.index} is not an application command`);
    assert(entry.index > this.applied, () => `entry ${entry.index} applied after ${this.applied}`);
    const command = decodeCommand(entry.data);
    // Set before the commit wakes watchers, so that they see this entry as applied.
    this.applied = entry.index;
    const txn = this.store.begin(entry.index);
    try {
      return this.run(txn, command);
    } finally {
      if (txn.open) txn.abort();
    }
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.capture());
  }

  /**
   * The same bytes as snapshot(), one bounded step at a time: the state is captured now
   * (an O(1) copy-on-write view), so applies may go on between steps.
   */
  *snapshotSteps(): Generator<void, Uint8Array, void> {
    const state = this.capture();
    yield;
    return yield* encodeSnapshotSteps(state);
  }

  /**
   * This group's state as a user snapshot, one part (one msgpack value, at most
   * snapshotPartBytesMax) per `next()`: the view and its applied index are taken now, in
   * this turn, and the parts concatenate to an FSM snapshot without any restore in progress.
   * One part is encoded at a time, so memory stays bounded whatever the state's size.
   */
  openSnapshotParts(): SnapshotParts {
    const state: FsmState = { ...this.capture(), restoreStaging: null };
    const parts = encodeSnapshotParts(state);
    return {
      appliedIndex: state.appliedIndex,
      keys: state.kvs.length,
      sessions: state.sessions.length,
      next: () => {
        const part = parts.next();
        return part.done === true ? null : part.value;
      },
    };
  }

  /** Everything a snapshot holds, as of now: O(rows) references, no copies of rows. */
  private capture(): FsmState {
    const view = this.store.snapshot();
    return {
      appliedIndex: this.applied,
      kvIndex: view.tableIndex(kvsTable),
      sessionIndex: view.tableIndex(sessionsTable),
      kvs: view.all(kvsTable),
      sessions: view.all(sessionsTable),
      autopilot: this.autopilotRecord,
      restoreStaging: this.restoreStaging.capture(),
    };
  }

  restore(data: Uint8Array): void {
    const state = decodeSnapshot(data);
    const sessions = new Set(state.sessions.map((session) => session.id));
    for (const entry of state.kvs) {
      assert(
        entry.session === null || sessions.has(entry.session),
        () => `snapshot: key ${entry.key} is held by a session it lacks`,
      );
    }
    this.store.restore((writer) => {
      for (const entry of state.kvs) writer.insert(kvsTable, entry);
      for (const session of state.sessions) writer.insert(sessionsTable, session);
      writer.setTableIndex(kvsTable, state.kvIndex);
      writer.setTableIndex(sessionsTable, state.sessionIndex);
      this.applied = state.appliedIndex;
      this.autopilotRecord = state.autopilot;
    });
    // A snapshot of an older release may hold more than the bound: writes that add bytes are
    // then refused until deletes bring it back under, so it loads rather than stop the server.
    this.liveBytes = rowsBytes(state);
    this.restoreStaging.load(state.restoreStaging);
    this.events.reset(state.appliedIndex);
  }

  /** Blocking queries (watches) waiting on this group now: a gauge read at scrape time. */
  get watcherCount(): number {
    return this.store.watcherCount;
  }

  /** Sessions in this group's copy of the session table (O(1)). */
  sessionCount(): number {
    return this.store.snapshot().count(sessionsTable);
  }

  /** Autopilot's settings as this replica applied them; null until first set. */
  autopilot(): StoredAutopilot | null {
    return this.autopilotRecord;
  }

  /** Raft index of the last entry applied (any command). */
  appliedIndex(): number {
    return this.applied;
  }

  kvIndex(): number {
    return this.queries().kvIndex();
  }

  sessionIndex(): number {
    return this.queries().sessionIndex();
  }

  getKey(key: string): KvEntry | null {
    return this.queries().getKey(key);
  }

  list(prefix: string): KvEntry[] {
    return this.queries().list(prefix);
  }

  keys(options: { prefix: string; separator: string | null }): string[] {
    return this.queries().keys(options);
  }

  getSession(id: string): ReturnType<FsmQueries['getSession']> {
    return this.queries().getSession(id);
  }

  listSessions(options: { node: string | null }): ReturnType<FsmQueries['listSessions']> {
    return this.queries().listSessions(options);
  }

  /**
   * One-shot: `onChange` runs once, after the first committed apply that changes a watched
   * key, a key under a watched prefix, or (with `sessions`) any session, or after a
   * restore. Returns a cancel function. Throws OVERLOADED beyond `watchersMax`.
   */
  watch(
    options: { keys?: readonly string[]; prefixes?: readonly string[]; sessions?: boolean },
    onChange: () => void,
  ): () => void {
    const targets: WatchTarget[] = [
      ...(options.keys ?? []).map((key): WatchTarget => ({ kind: 'key', table: kvsTable, index: 'id', key })),
      ...(options.prefixes ?? []).map(
        (prefix): WatchTarget => ({ kind: 'prefix', table: kvsTable, index: 'id', prefix }),
      ),
      ...(options.sessions === true ? [{ kind: 'table', table: sessionsTable } as const] : []),
    ];
    return this.store.watch({ targets, onChange });
  }

  /** A primitive's read (or one group's part of a gather read) on the applied state. */
  primitive(read: PrimitiveRead): PrimitiveReadResult {
    return readPrimitive(this.store.snapshot(), read);
  }

  /**
   * A primitive's changes after a version, for an event stream; `compacted` when this
   * server no longer has them all (it restarted, installed a snapshot or dropped old ones).
   */
  primitiveEvents(read: EventsRead): ReturnType<typeof readEvents> {
    return readEvents({ log: this.events, read });
  }

  /** Every primitive with a TTL, as applied here. */
  primitiveTtls(): TtlRow[] {
    return ttlRows(this.store.snapshot());
  }

  /** The primitives written after `after` with their TTLs, or null if no longer known. */
  primitiveTtlChanges(after: number): ReturnType<typeof ttlChanges> {
    return ttlChanges({ log: this.events, after });
  }

  /** A read-only copy-on-write view: O(1), and later applies never change it. */
  view(): FsmView {
    const applied = this.applied;
    return { ...queriesOver(this.store.snapshot()), appliedIndex: () => applied };
  }

  private queries(): FsmQueries {
    return queriesOver(this.store.snapshot());
  }

  private run(txn: WriteTxn, command: FsmCommand): FsmResult {
    const index = txn.index;
    const metered = new MeteredTxn(txn);
    switch (command.type) {
      case 'kv': {
        const outcome = runOp(metered, index, command.op);
        if (!outcome.ok) {
          const error = outcome.code === null ? null : { code: outcome.code, message: outcome.what };
          return { type: 'kv', ok: false, index, error };
        }
        const error = this.overQuota(metered);
        if (error !== null) return { type: 'kv', ok: false, index, error };
        this.commit({ txn, metered });
        return { type: 'kv', ok: true, index, error: null };
      }
      case 'txn': {
        const outcome = runTxn(metered, command.ops);
        if (!outcome.ok) return { type: 'txn', outcome, error: null };
        const error = this.overQuota(metered);
        if (error !== null) return { type: 'txn', outcome: null, error };
        this.commit({ txn, metered });
        return { type: 'txn', outcome, error: null };
      }
      case 'session-create': {
        // An existing id is a no-op (createSession), so it is never refused.
        const exists = txn.first(sessionsTable, 'id', command.session.id) !== null;
        const sessions = txn.count(sessionsTable);
        const refusal = exists ? null : sessionQuotaError({ sessions, limits: this.limits });
        if (refusal !== null) return { type: 'session-create', session: null, error: refusal };
        const session = createSession(metered, {
          index,
          spec: command.session,
          createIndex: command.createIndex,
        });
        const error = this.overQuota(metered);
        if (error !== null) return { type: 'session-create', session: null, error };
        this.commit({ txn, metered });
        return { type: 'session-create', session, error: null };
      }
      case 'session-destroy': {
        // Never refused: it only frees bytes, so a group at its bound can shed state.
        const recording = new ChangeRecordingTxn(metered);
        const { existed, released } = destroySession(recording, {
          index,
          id: command.id,
          groupId: this.groupId,
        });
        this.commit({ txn, metered });
        this.events.append(index, recording.changes);
        return { type: 'session-destroy', existed, released };
      }
      case 'prim': {
        const { kind, name, op, args, session, seq } = command;
        const primitive = { kind, name, op, args, session, seq };
        const recording = new ChangeRecordingTxn(metered);
        const outcome = applyPrimitive(recording, { command: primitive, groupId: this.groupId });
        const error = this.overQuota(metered);
        if (error !== null) return { type: 'prim', index, result: null, error };
        // A refusal is committed too: with a seq, it is remembered for the retry.
        this.commit({ txn, metered });
        this.events.append(index, recording.changes);
        return { type: 'prim', index, ...outcome };
      }
      case 'autopilot-config': {
        // Not in a store transaction: nothing watches it, and it is replaced whole.
        const current = this.autopilotRecord;
        if (command.cas !== null && command.cas !== (current?.modifyIndex ?? 0)) {
          return { type: 'autopilot-config', ok: false, index };
        }
        this.autopilotRecord = {
          settings: command.settings,
          createIndex: current?.createIndex ?? index,
          modifyIndex: index,
        };
        return { type: 'autopilot-config', ok: true, index };
      }
      case 'restore-begin':
      case 'restore-chunk':
      case 'restore-batch':
      case 'restore-commit':
      case 'restore-abort':
      case 'restore-legacy': {
        const outcome = this.restoreStaging.step(command);
        if (!('commit' in outcome)) return outcome;
        txn.abort();
        this.replaceTables({ rows: outcome.commit, index });
        return { type: 'restore', ok: true, error: null };
      }
    }
  }

  /**
   * A user snapshot's commit (fsm/restore.ts): every KV entry and session replaced at
   * `index`, which becomes both tables' index, and every watcher woken. Autopilot's
   * settings are the running cluster's, not the archive's, and stay; so does the fence
   * count, when it ran past the index (primitives/fences.ts).
   */
  private replaceTables(options: { rows: PartsSummary; index: number }): void {
    const restored = restoredRows({ ...options.rows, index: options.index });
    const { sessions } = restored;
    const count = fenceCountIn(this.store.snapshot());
    const kvs = keepFenceCount({ kvs: restored.kvs, count, index: options.index });
    this.store.restore((writer) => {
      for (const entry of kvs) writer.insert(kvsTable, entry);
      for (const session of sessions) writer.insert(sessionsTable, session);
      writer.setTableIndex(kvsTable, options.index);
      writer.setTableIndex(sessionsTable, options.index);
    });
    // The staging checked these rows against groupStateBytesMax (fsm/restore.ts), a kept
    // fence count aside.
    this.liveBytes = rowsBytes({ kvs, sessions });
    // Every primitive may have changed: streams read the state again.
    this.events.reset(options.index);
  }

  /** The refusal of a write that would take the state past groupStateBytesMax, or null. */
  private overQuota(metered: MeteredTxn): FsmError | null {
    return stateQuotaError({ stateBytes: this.liveBytes, addBytes: metered.deltaBytes, limits: this.limits });
  }

  /** Publishes the writes and counts their bytes into the state's size. */
  private commit(options: { txn: WriteTxn; metered: MeteredTxn }): void {
    options.txn.commit();
    this.liveBytes += options.metered.deltaBytes;
    assert(this.liveBytes >= 0, () => `a group's state is ${this.liveBytes} bytes after a write`);
  }
}

/**
 * Consul's TxnRW: every op runs (later ops see earlier ones' writes) and each failure is
 * reported with its op's position; any failure rolls the whole transaction back. The
 * caller commits a success, once the state's bound allows it.
 */
function runTxn(txn: MeteredTxn, ops: readonly KvOp[]): TxnOutcome {
  const results: KvEntry[] = [];
  const errors: TxnError[] = [];
  ops.forEach((op, opIndex) => {
    const outcome = runOp(txn, txn.index, op);
    if (outcome.ok) results.push(...outcome.results);
    else errors.push({ opIndex, what: outcome.what });
  });
  if (errors.length > 0) return { ok: false, errors, index: txn.index };
  return { ok: true, results, index: txn.index };
}
