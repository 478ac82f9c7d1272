import {
  type ConfChange,
  type ConfState,
  EntryType,
  type Message,
  type NodeId,
  type NodeReady,
  type RaftError,
  type RaftLimits,
  type RaftStatus,
  RawNode,
  type ReadState,
  type Role,
} from '@conclave/raft';
import type { LogView, SafetyCheckers } from './checkers.js';
import type { NodeStore, PendingWrite } from './disk.js';
import { decodeCommand, encodeCommand, type KvApplyOutcome, type KvCommand, KvStateMachine } from './kv.js';
import { overlayLogView } from './log-view.js';
import { Rng } from './rng.js';
import { isStorageFailure, isStorageRefusal } from './wal-disk.js';

/**
 * One simulated server: the production RawNode, its simulated disk and the KV state
 * machine, driven by virtual time. The node handles each Ready exactly as the contract
 * says and, like a server blocked on fsync, handles no tick or message while a write is
 * syncing: those wait in its inbox until the fsync event fires.
 */

/** Events a node schedules on the world's queue. `life` discards events from before a crash. */
export type NodeEvent =
  | { readonly kind: 'tick'; readonly node: number; readonly life: number }
  | { readonly kind: 'fsync'; readonly node: number; readonly life: number; readonly writeId: number };

export interface AppliedRecord {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
  /** The KV command, or null for a leader's empty entry or a membership change. */
  readonly command: KvCommand | null;
}

export interface ReadRequest {
  /** Unique per request; it travels through the core as the ReadIndex context. */
  readonly context: string;
  readonly key: string;
  readonly mode: 'quorum' | 'lease';
}

/** What the node needs from the world around it. */
export interface NodeEnvironment {
  nowMs(): number;
  schedule(options: { atMs: number; event: NodeEvent }): void;
  send(options: { from: number; message: Message }): void;
  trace(options: { node: number; kind: string; summary: string }): void;
  /** A write started; the world may arrange a crash before its fsync (a torn write). */
  onWriteBegun(options: { node: number; write: PendingWrite }): void;
  /** wal storage: whether power fails inside this write's fsync (a torn write). */
  tearWrite?(options: { node: number }): boolean;
  readonly checkers: SafetyCheckers;
  /** A command entry was applied (for the first time or again after a restart). */
  onApply(options: { node: number; record: AppliedRecord; outcome: KvApplyOutcome | null }): void;
  /** A read was served: `value` is the key's value at a state at least as new as the read's index. */
  onRead(options: { node: number; request: ReadRequest; index: number; value: string | null }): void;
  /** A read will never be served here (the node lost leadership before its quorum round). */
  onReadFailed(options: { node: number; request: ReadRequest; errorCode: string }): void;
}

export type RaftTuning = Partial<RaftLimits> & { readonly preVote?: boolean; readonly checkQuorum?: boolean };

export interface SimNodeOptions {
  readonly index: number;
  readonly id: NodeId;
  readonly seed: number;
  readonly disk: NodeStore;
  readonly raft: RaftTuning;
  readonly tickMs: number;
  /** This node's clock runs at this rate relative to virtual time (1 = exact). */
  readonly clockRate: number;
  /** Take a snapshot once this many entries were applied past the last one; null: never. */
  readonly snapshotThresholdEntries: number | null;
  /** Entries kept in the log behind a snapshot, so slightly lagging followers avoid a snapshot. */
  readonly snapshotTrailingEntries: number;
  readonly env: NodeEnvironment;
}

export type ProposeOutcome =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly term: number; readonly error: RaftError | null };

type Input = { readonly kind: 'tick' } | { readonly kind: 'message'; readonly message: Message };

interface Volatile {
  readonly raw: RawNode;
  /** Replaced wholesale when a snapshot is installed. */
  kv: KvStateMachine;
  readonly inbox: Input[];
  /** The Ready whose write is syncing, or null when the node is not blocked. */
  pendingReady: NodeReady | null;
  /** Read requests by context, waiting for their ReadState and then for apply. */
  readonly readsByContext: Map<string, ReadRequest>;
  readonly readsReady: { state: ReadState; request: ReadRequest }[];
  appliedIndex: number;
  role: Role;
  leaderId: NodeId | null;
  leaderCommit: number;
  /** Where the clock's next tick falls exactly; ticks are scheduled at its rounding. */
  nextTickExactMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimNode {
  readonly index: number;
  readonly id: NodeId;
  readonly disk: NodeStore;
  readonly tickPeriodMs: number;
  readonly #options: SimNodeOptions;
  readonly #env: NodeEnvironment;
  #life = 0;
  #state: Volatile | null = null;
  /** Why the last start refused (its disk failed recovery), or null. */
  #refused: string | null = null;
  /** First application of each index over every life: the observer's record, not node state. */
  readonly #appliedRecords: AppliedRecord[] = [];
  readonly #appliedByIndex = new Map<number, AppliedRecord>();
  /** The highest index this node's state machine ever reflected (by apply or by snapshot). */
  #appliedMax = 0;

  constructor(options: SimNodeOptions) {
    if (!(options.clockRate > 0)) throw new RangeError(`SimNode: clockRate must be positive`);
    const threshold = options.snapshotThresholdEntries;
    if (threshold !== null && (!Number.isSafeInteger(threshold) || threshold < 1)) {
      throw new RangeError('SimNode: snapshotThresholdEntries must be a positive integer or null');
    }
    this.index = options.index;
    this.id = options.id;
    this.disk = options.disk;
    this.tickPeriodMs = options.tickMs / options.clockRate;
    this.#options = options;
    this.#env = options.env;
  }

  get alive(): boolean {
    return this.#state !== null;
  }

  /** The disk failed recovery at the last start (bit rot): the node stays down. */
  get refused(): string | null {
    return this.#refused;
  }

  get life(): number {
    return this.#life;
  }

  /** Blocked on an fsync: inputs queue up until it completes. */
  get blocked(): boolean {
    return (this.#state?.pendingReady ?? null) !== null;
  }

  get role(): Role | null {
    return this.#state?.role ?? null;
  }

  isLeader(): boolean {
    return this.#state?.role === 'leader';
  }

  /** The leader this node believes in, as a NodeId, or null. */
  leaderId(): NodeId | null {
    return this.#state?.leaderId ?? null;
  }

  /** The current term: live from the core, or the durable term of a crashed node. */
  term(): number {
    const state = this.#state;
    return state === null ? this.disk.storage.initialState().hardState.term : state.raw.status().term;
  }

  commitIndex(): number {
    const state = this.#state;
    return state === null ? this.disk.storage.initialState().hardState.commit : state.raw.status().commit;
  }

  get appliedIndex(): number {
    return this.#state?.appliedIndex ?? 0;
  }

  get appliedMax(): number {
    return this.#appliedMax;
  }

  appliedRecords(): readonly AppliedRecord[] {
    return this.#appliedRecords;
  }

  appliedEntry(index: number): AppliedRecord | undefined {
    return this.#appliedByIndex.get(index);
  }

  /** The state machine's canonical bytes, or null while down. */
  stateSnapshot(): Uint8Array | null {
    return this.#state?.kv.snapshot() ?? null;
  }

  /** The current KV value of `key` on this node (not linearizable; for tests). */
  peek(key: string): string | null {
    return this.#state?.kv.get(key) ?? null;
  }

  /** The node's log as the core sees it right now, including a syncing write. */
  logView(): LogView {
    const pending = this.#state?.pendingReady ?? null;
    return overlayLogView({
      storage: this.disk.storage,
      snapshot: pending?.snapshot ?? null,
      entries: pending?.entries ?? [],
    });
  }

  /** Boot from durable storage: a first start and a restart after a crash are the same. */
  start(): void {
    if (this.#state !== null) throw new Error(`n${this.index} is already running`);
    try {
      this.disk.open();
    } catch (error) {
      if (!isStorageRefusal(error)) throw error;
      this.#refused = `${error.name}: ${error.message}`;
      this.#env.trace({ node: this.index, kind: 'refused', summary: this.#refused });
      return;
    }
    this.#refused = null;
    this.#life++;
    const storage = this.disk.storage;
    const snapshot = storage.snapshot();
    const applied = snapshot.metadata.index;
    const prng = Rng.fork({ seed: this.#options.seed, label: `raft/${this.index}/${this.#life}` });
    const raw = new RawNode({ config: { ...this.#options.raft, id: this.id, prng, applied }, storage });
    const env = this.#env;
    const nowMs = env.nowMs();
    // A random phase, so that nodes do not tick in lock-step.
    const phaseRng = Rng.fork({ seed: this.#options.seed, label: `phase/${this.index}/${this.#life}` });
    const firstTickMs = nowMs + phaseRng.floatBetween({ min: 0, max: this.tickPeriodMs });
    this.#state = {
      raw,
      kv: KvStateMachine.restore(snapshot.data),
      inbox: [],
      pendingReady: null,
      readsByContext: new Map(),
      readsReady: [],
      appliedIndex: applied,
      role: 'follower',
      leaderId: null,
      leaderCommit: 0,
      nextTickExactMs: firstTickMs,
    };
    this.#appliedMax = Math.max(this.#appliedMax, applied);
    const { hardState } = storage.initialState();
    env.checkers.onStart({ node: this.index, hardState, snapshotIndex: applied });
    env.trace({
      node: this.index,
      kind: 'start',
      summary: `life ${this.#life} term ${hardState.term} commit ${hardState.commit} snap ${applied} last ${storage.lastIndex()}`,
    });
    env.schedule({
      atMs: Math.round(firstTickMs),
      event: { kind: 'tick', node: this.index, life: this.#life },
    });
    this.#pump();
  }

  /**
   * Erase the node's disk (crashing it first if it runs): it stays down, and a later
   * start() boots a brand-new server with an empty log and no membership, which refuses
   * entries until a leader sends it a snapshot. The observer's record of what it applied
   * in earlier lives is kept.
   */
  wipe(): void {
    this.crash();
    this.disk.wipe();
    this.#refused = null;
    this.#env.checkers.onWipe({ node: this.index });
    this.#env.trace({ node: this.index, kind: 'wipe', summary: `life ${this.#life}` });
  }

  /** Power loss: volatile state is gone; the unsynced write is lost or torn. */
  crash(): void {
    if (this.#state === null) return;
    this.#state = null;
    const outcome = this.disk.crash();
    this.#env.checkers.onDurable({ node: this.index, records: outcome.kept, log: this.logView() });
    this.#env.trace({
      node: this.index,
      kind: 'crash',
      summary: `kept ${outcome.kept.length} lost ${outcome.lostCount}`,
    });
  }

  /** Handle one of this node's scheduled events. */
  onEvent(event: NodeEvent): void {
    const state = this.#state;
    if (state === null || event.life !== this.#life) return;
    switch (event.kind) {
      case 'tick': {
        state.nextTickExactMs += this.tickPeriodMs;
        this.#env.schedule({
          atMs: Math.max(this.#env.nowMs(), Math.round(state.nextTickExactMs)),
          event: { kind: 'tick', node: this.index, life: this.#life },
        });
        this.#input({ kind: 'tick' });
        return;
      }
      case 'fsync':
        this.#completeWrite(event.writeId);
        return;
    }
  }

  /** A message arrived from the network. Dropped silently when the node is down. */
  receive(message: Message): void {
    if (this.#state === null) return;
    this.#input({ kind: 'message', message });
  }

  propose(command: KvCommand): ProposeOutcome {
    const state = this.#state;
    if (state === null) return { ok: false, term: this.term(), error: null };
    const result = state.raw.propose(encodeCommand(command));
    this.#pump();
    if (!result.ok) return { ok: false, term: state.raw.status().term, error: result.error };
    return { ok: true, index: result.index, term: result.term };
  }

  /** Start a linearizable read; its value arrives through the environment's onRead. */
  read(request: ReadRequest): { ok: true } | { ok: false; error: RaftError | null } {
    const state = this.#state;
    if (state === null) return { ok: false, error: null };
    if (state.readsByContext.has(request.context)) throw new Error(`read context ${request.context} reused`);
    const result = state.raw.readIndex({ context: encoder.encode(request.context), mode: request.mode });
    if (result.ok) state.readsByContext.set(request.context, request);
    this.#pump();
    return result.ok ? { ok: true } : { ok: false, error: result.error };
  }

  campaign(): void {
    const state = this.#state;
    if (state === null) return;
    state.raw.campaign();
    this.#pump();
  }

  /** Propose a single-server membership change (leader only); it takes effect when applied. */
  proposeConfChange(change: ConfChange): ProposeOutcome {
    const state = this.#state;
    if (state === null) return { ok: false, term: this.term(), error: null };
    const result = state.raw.proposeConfChange(change);
    this.#pump();
    if (!result.ok) return { ok: false, term: state.raw.status().term, error: result.error };
    return { ok: true, index: result.index, term: result.term };
  }

  /** The membership this node has applied, or null while down. */
  confState(): ConfState | null {
    return this.#state?.raw.status().confState ?? null;
  }

  /** The core's status (term, commit, membership, a leader's per-member progress), or null while down. */
  status(): RaftStatus | null {
    return this.#state?.raw.status() ?? null;
  }

  transferLeader(to: NodeId): { ok: true } | { ok: false; error: RaftError | null } {
    const state = this.#state;
    if (state === null) return { ok: false, error: null };
    const result = state.raw.transferLeader(to);
    this.#pump();
    return result;
  }

  persistedBytes(): number {
    return this.disk.persistedBytes();
  }

  #input(input: Input): void {
    const state = this.#state;
    if (state === null) return;
    if (state.pendingReady !== null) {
      state.inbox.push(input);
      return;
    }
    this.#handle(state, input);
    this.#pump();
  }

  #handle(state: Volatile, input: Input): void {
    if (input.kind === 'tick') {
      state.raw.tick();
      return;
    }
    state.raw.step(input.message);
  }

  /** Drain Readies until the core has none or a write blocks the node. */
  #pump(): void {
    for (;;) {
      const state = this.#state;
      if (state === null) return;
      if (state.pendingReady !== null) {
        this.#stepDuringWrite(state);
        return;
      }
      if (state.inbox.length > 0 && !state.raw.hasReady()) {
        const next = state.inbox.shift();
        if (next !== undefined) this.#handle(state, next);
        continue;
      }
      if (!state.raw.hasReady()) return;
      const rd = state.raw.ready();
      this.#observe(state, rd);
      for (const message of rd.messages) this.#env.send({ from: this.index, message });
      if (rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null) {
        const write = this.disk.beginWrite({
          snapshot: rd.snapshot,
          entries: rd.entries,
          hardState: rd.hardState,
          nowMs: this.#env.nowMs(),
        });
        state.pendingReady = rd;
        this.#env.schedule({
          atMs: write.syncAtMs,
          event: { kind: 'fsync', node: this.index, life: this.#life, writeId: write.id },
        });
        this.#env.onWriteBegun({ node: this.index, write });
        return;
      }
      this.#finishReady(state, rd);
    }
  }

  /**
   * As the production host does while its fdatasync is in flight (server host.ts): inputs
   * are stepped, and the messages that depend on nothing durable leave at once; the rest
   * wait for the next Ready, after this write.
   */
  #stepDuringWrite(state: Volatile): void {
    for (let next = state.inbox.shift(); next !== undefined; next = state.inbox.shift()) {
      this.#handle(state, next);
    }
    for (const message of state.raw.takeMessages()) this.#env.send({ from: this.index, message });
  }

  #completeWrite(writeId: number): void {
    const state = this.#state;
    const rd = state?.pendingReady ?? null;
    if (state === null || rd === null)
      throw new Error(`n${this.index}: fsync ${writeId} with no write pending`);
    const tear = this.#env.tearWrite?.({ node: this.index }) ?? false;
    let records: ReturnType<NodeStore['completeWrite']>;
    try {
      records = this.disk.completeWrite(writeId, tear ? { tear } : {});
    } catch (error) {
      if (!isStorageFailure(error)) throw error;
      this.#stop(error);
      return;
    }
    state.pendingReady = null;
    this.#env.checkers.onDurable({ node: this.index, records, log: this.logView() });
    this.#env.trace({
      node: this.index,
      kind: 'fsync',
      summary: `write ${writeId} ${records.length} records`,
    });
    this.#finishReady(state, rd);
    this.#pump();
  }

  /** Steps 2-5 of the Ready contract, once the write (if any) is durable. */
  #finishReady(state: Volatile, rd: NodeReady): void {
    for (const message of rd.messagesAfterPersist) this.#env.send({ from: this.index, message });
    if (rd.snapshot !== null) {
      const { snapshot } = rd;
      this.#env.checkers.onRestore({ node: this.index, snapshot });
      const kv = KvStateMachine.restore(snapshot.data);
      state.kv = kv;
      state.appliedIndex = snapshot.metadata.index;
      this.#appliedMax = Math.max(this.#appliedMax, state.appliedIndex);
      this.#env.trace({ node: this.index, kind: 'restore', summary: `snapshot ${snapshot.metadata.index}` });
    }
    for (const entry of rd.committedEntries) {
      this.#env.checkers.onApply({ node: this.index, entry });
      state.appliedIndex = entry.index;
      const isCommand = entry.type === EntryType.Normal && entry.data.byteLength > 0;
      const command = isCommand ? decodeCommand(entry.data) : null;
      const outcome = command === null ? null : state.kv.apply(command);
      let record = this.#appliedByIndex.get(entry.index);
      if (record === undefined) {
        record = { index: entry.index, term: entry.term, data: entry.data, command };
        this.#appliedByIndex.set(entry.index, record);
        this.#appliedRecords.push(record);
      }
      this.#appliedMax = Math.max(this.#appliedMax, entry.index);
      this.#env.onApply({ node: this.index, record, outcome });
    }
    if (rd.committedEntries.length > 0) {
      const first = rd.committedEntries[0]?.index ?? 0;
      this.#env.trace({ node: this.index, kind: 'apply', summary: `${first}..${state.appliedIndex}` });
    }
    for (const dropped of rd.droppedReads) {
      const context = decoder.decode(dropped.context);
      const request = state.readsByContext.get(context);
      if (request === undefined) continue;
      state.readsByContext.delete(context);
      this.#env.trace({ node: this.index, kind: 'readFailed', summary: `${context} ${dropped.error.code}` });
      this.#env.onReadFailed({ node: this.index, request, errorCode: dropped.error.code });
    }
    for (const readState of rd.readStates) {
      const context = decoder.decode(readState.context);
      const request = state.readsByContext.get(context);
      if (request === undefined) continue;
      state.readsByContext.delete(context);
      state.readsReady.push({ state: readState, request });
    }
    this.#serveReads(state);
    state.raw.advance();
    this.#maybeSnapshot(state);
  }

  /**
   * A write or fsync failed (wal storage): whether it reached the disk is unknown, and a
   * retry proves nothing, so the node stops as if it crashed; a restart recovers from disk.
   */
  #stop(error: Error): void {
    const code = error instanceof Error && 'code' in error ? ` ${String(error.code)}` : '';
    this.#env.trace({ node: this.index, kind: 'stopped', summary: `${error.name}${code}` });
    this.crash();
  }

  #serveReads(state: Volatile): void {
    if (state.readsReady.length === 0) return;
    const waiting: Volatile['readsReady'] = [];
    for (const read of state.readsReady) {
      if (read.state.index > state.appliedIndex) {
        waiting.push(read);
        continue;
      }
      const value = state.kv.get(read.request.key);
      this.#env.trace({
        node: this.index,
        kind: 'read',
        summary: `${read.request.context} ${read.request.mode} @${read.state.index} -> ${value}`,
      });
      this.#env.onRead({ node: this.index, request: read.request, index: read.state.index, value });
    }
    state.readsReady.length = 0;
    state.readsReady.push(...waiting);
  }

  /** Compare the Ready against the checkers before acting on it. */
  #observe(state: Volatile, rd: NodeReady): void {
    const checkers = this.#env.checkers;
    const wasLeader = state.role === 'leader';
    if (rd.softState !== null) {
      const changed = rd.softState.role !== state.role || rd.softState.leaderId !== state.leaderId;
      state.role = rd.softState.role;
      state.leaderId = rd.softState.leaderId;
      if (changed) {
        this.#env.trace({
          node: this.index,
          kind: 'role',
          summary: `${state.role} term ${state.raw.status().term} leader ${state.leaderId ?? '-'}`,
        });
      }
    }
    const view = (): LogView =>
      overlayLogView({ storage: this.disk.storage, snapshot: rd.snapshot, entries: rd.entries });
    const term = state.raw.status().term;
    if (state.role === 'leader' && !wasLeader) {
      state.leaderCommit = 0;
      checkers.onBecomeLeader({ node: this.index, term, log: view() });
    }
    if (rd.hardState !== null) {
      checkers.onHardState({ node: this.index, hardState: rd.hardState });
      if (state.role === 'leader' && rd.hardState.commit > state.leaderCommit) {
        state.leaderCommit = rd.hardState.commit;
        checkers.onLeaderCommit({
          node: this.index,
          term: rd.hardState.term,
          commit: rd.hardState.commit,
          log: view(),
        });
      }
    }
    this.#env.trace({ node: this.index, kind: 'ready', summary: summarizeReady(rd) });
  }

  #maybeSnapshot(state: Volatile): void {
    const threshold = this.#options.snapshotThresholdEntries;
    if (threshold === null) return;
    const storage = this.disk.storage;
    const snapIndex = storage.snapshotMetadata().index;
    const applied = state.appliedIndex;
    if (applied - snapIndex < threshold) return;
    const snapshot = state.raw.createSnapshot({ index: applied, data: state.kv.snapshot() });
    const compactIndex = applied - this.#options.snapshotTrailingEntries;
    try {
      this.disk.createSnapshot({ snapshot, compactIndex });
    } catch (error) {
      if (!isStorageFailure(error)) throw error;
      this.#stop(error);
      return;
    }
    this.#env.trace({
      node: this.index,
      kind: 'snapshot',
      summary: `at ${applied} compact ${compactIndex} ${snapshot.data.byteLength}B`,
    });
  }
}

export function summarizeMessage(m: Message): string {
  const head = `${m.type} ${m.from}>${m.to} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} i${m.index}/${m.logTerm} n${m.entries.length} c${m.commit}`;
    case 'appResp':
      return `${head} i${m.index}${m.reject ? ` rej h${m.hintIndex}/${m.hintTerm}` : ''}`;
    case 'vote':
    case 'preVote':
      return `${head} i${m.index}/${m.logTerm}${m.transfer ? ' xfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head}${m.reject ? ' rej' : ''}`;
    case 'heartbeat':
      return `${head} c${m.commit} r${m.round}`;
    case 'heartbeatResp':
      return `${head} r${m.round}`;
    case 'snap':
      return `${head} s${m.metadata.index}/${m.metadata.term} o${m.offset} ${m.data.byteLength}B${m.done ? ' done' : ''}`;
    case 'snapResp':
      return `${head} s${m.index} o${m.offset}`;
    case 'timeoutNow':
      return head;
  }
}

function summarizeReady(rd: NodeReady): string {
  const parts: string[] = [];
  if (rd.hardState !== null)
    parts.push(`hs ${rd.hardState.term}/${rd.hardState.vote ?? '-'}/${rd.hardState.commit}`);
  if (rd.snapshot !== null) parts.push(`snap ${rd.snapshot.metadata.index}`);
  const first = rd.entries[0];
  const last = rd.entries[rd.entries.length - 1];
  if (first !== undefined && last !== undefined) parts.push(`ents ${first.index}..${last.index}`);
  const c0 = rd.committedEntries[0];
  const c1 = rd.committedEntries[rd.committedEntries.length - 1];
  if (c0 !== undefined && c1 !== undefined) parts.push(`commit ${c0.index}..${c1.index}`);
  if (rd.messages.length > 0) parts.push(`msgs ${rd.messages.length}`);
  if (rd.messagesAfterPersist.length > 0) parts.push(`msgsAP ${rd.messagesAfterPersist.length}`);
  if (rd.readStates.length > 0) parts.push(`reads ${rd.readStates.length}`);
  return parts.join(' ');
}
