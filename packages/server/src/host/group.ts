import {
  assert,
  type ConfChange,
  createPrng,
  decodeConfChange,
  EntryType,
  entrySizeBytes,
  type LogStorage,
  type NodeReady,
  type RaftConfigInput,
  RaftError,
  RaftErrorCode,
  RawNode,
  type ReadMode,
} from '@conclave/raft';
import { ConclaveError } from '../errors.js';
import { AppliedBytes } from './applied-bytes.js';
import { type GroupObserver, noopGroupObserver } from './observer.js';
import type { DurableLog, GroupId, StateMachine } from './ports.js';

export interface GroupLimits {
  /** Proposals waiting for their entry to apply; more are refused at once. */
  readonly proposalsPendingMax: number;
  /** Reads waiting for their index to apply; more are refused at once. */
  readonly readsPendingMax: number;
  /** A proposal or read still unanswered after this many host ticks fails with TIMEOUT. */
  readonly requestTimeoutTicks: number;
  /** Take a snapshot once this many entries were applied since the last one. */
  readonly snapshotThresholdEntries: number;
  /**
   * Also take a snapshot once the entries applied since the last one take this many bytes
   * (entrySizeBytes: data plus a fixed overhead), so the log held in memory stays bounded by
   * size, not only by count, whatever the size of the values written.
   */
  readonly snapshotThresholdBytes: number;
  /**
   * Entries kept in the log behind a snapshot, so a briefly lagging follower needs no snapshot.
   * Also what lets a follower that just installed a snapshot continue from the log: it must
   * exceed what the group commits while a snapshot is sent, or the follower, behind the
   * compacted log again, gets another snapshot, forever (etcd #4055, Consul #9609).
   */
  readonly snapshotTrailingEntries: number;
  /**
   * At most this many bytes of entries are kept behind a snapshot (the newest that fit), on
   * top of the count bound: whichever keeps fewer entries wins. The same catch-up constraint
   * applies, in bytes: it must exceed what the group writes while a snapshot is sent.
   */
  readonly snapshotTrailingBytesMax: number;
  /**
   * Also take a snapshot once this many host ticks passed since the last one, if anything
   * was applied since (0: never by time), so a slowly written group still compacts its log.
   */
  readonly snapshotIntervalTicks: number;
  /**
   * ... but only once the bytes applied since the last snapshot reach this share of that
   * snapshot's size. Without it a 1 GiB state under a trickle of writes was rewritten whole
   * every interval (8 groups x 128 MiB x 3 servers every 120 s), and those writes stretched
   * fsyncs and memory during a user snapshot. With 1/8, the interval costs at most 8 bytes
   * of snapshot per byte written; a small state still snapshots after any write.
   */
  readonly snapshotIntervalLogRatioMin: number;
  /**
   * Encoding a snapshot in steps, per turn: steps while this budget lasts (ms), at least one.
   * A time budget rather than a count, because a step's cost varies a hundredfold: one part
   * is 4096 small rows (~4 ms) or four 64 KiB values (~0.1 ms), and a fixed count of 2 made
   * a 128 MiB state of large values take hundreds of turns.
   */
  readonly snapshotStepBudgetMs: number;
  /** ... and at most this many steps (parts of ~256 KiB: 16 MiB per turn). */
  readonly snapshotStepsPerTurnMax: number;
}

export const defaultGroupLimits: GroupLimits = {
  proposalsPendingMax: 16_384,
  readsPendingMax: 16_384,
  requestTimeoutTicks: 500,
  snapshotThresholdEntries: 8192,
  snapshotStepBudgetMs: 3,
  snapshotStepsPerTurnMax: 64,
  snapshotThresholdBytes: 64 * 1024 * 1024,
  snapshotTrailingEntries: 1024,
  snapshotTrailingBytesMax: 64 * 1024 * 1024,
  snapshotIntervalTicks: 0,
  snapshotIntervalLogRatioMin: 1 / 8,
};

interface PendingProposal<Result> {
  readonly term: number;
  readonly deadlineTick: number;
  /** performance.now() when proposed: the proposal-to-apply latency starts here. */
  readonly startedMs: number;
  readonly resolve: (result: { index: number; result: Result }) => void;
  readonly reject: (error: Error) => void;
}

interface PendingRead {
  readonly deadlineTick: number;
  readonly resolve: (index: number) => void;
  readonly reject: (error: Error) => void;
  /** Known once the ReadState arrives. */
  index: number | null;
}

/**
 * One Raft group on this server: its core, its state machine, and the callers waiting on
 * proposals and reads. The host drives it; it never touches I/O itself.
 */
export class RaftGroup<Result> {
  readonly raw: RawNode;
  private readonly proposals = new Map<number, PendingProposal<Result>>();
  private readonly reads = new Map<number, PendingRead>();
  private readSequence = 0;
  private snapshotIndex: number;
  /** The last snapshot's size (taken, installed, or loaded at start): what the interval weighs the log against. */
  private snapshotBytes: number;
  private snapshotJob: {
    readonly index: number;
    readonly steps: Iterator<void, Uint8Array, void>;
    /** Encoding time so far, summed over the turns its steps ran in (not the wait between). */
    encodeMs: number;
  } | null = null;
  /** A snapshot handed to the log is being stored in the background. */
  private snapshotWriting = false;
  private readonly observer: GroupObserver;
  /** The leader (and its term) last reported, so each change is reported exactly once. */
  private knownLeader: { readonly id: string; readonly term: number } | null = null;
  private appliedIndex: number;
  /** Wall-clock time of the last snapshot taken or installed here (ms); null if none since start. */
  private snapshotTimeMs: number | null = null;
  /** Host tick of the last snapshot taken or installed here (the start counts as one). */
  private snapshotTick = 0;
  private readonly storage: LogStorage;
  /** Sizes of the applied entries still in the log, for the byte threshold and trailing bound. */
  private readonly appliedBytes: AppliedBytes;

  constructor(
    private readonly options: {
      groupId: GroupId;
      nodeId: string;
      seed: number;
      log: DurableLog;
      stateMachine: StateMachine<Result>;
      raft: Partial<Omit<RaftConfigInput, 'id' | 'prng' | 'applied'>>;
      limits: GroupLimits;
      /** A membership change was applied at `index` (on every member, at the same index). */
      onConfChange?: ((event: { groupId: GroupId; index: number; change: ConfChange }) => void) | undefined;
      observer?: GroupObserver | undefined;
    },
  ) {
    this.observer = options.observer ?? noopGroupObserver;
    const storage = options.log.storage(options.groupId);
    this.storage = storage;
    const snapshot = storage.snapshot();
    this.snapshotIndex = snapshot.metadata.index;
    this.appliedIndex = snapshot.metadata.index;
    this.appliedBytes = trackLoggedBytes({ storage, throughIndex: snapshot.metadata.index });
    this.snapshotBytes = snapshot.data.byteLength;
    if (snapshot.data.byteLength > 0) options.stateMachine.restore(snapshot.data);
    this.raw = new RawNode({
      config: {
        ...options.raft,
        id: options.nodeId,
        prng: createPrng(options.seed),
        applied: this.appliedIndex,
      },
      storage,
    });
  }

  get groupId(): GroupId {
    return this.options.groupId;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** For operators: the last snapshot's index, and when it was taken (null: before this start). */
  get lastSnapshot(): { readonly index: number; readonly timeMs: number | null } {
    return { index: this.snapshotIndex, timeMs: this.snapshotTimeMs };
  }

  /** The first index still in the log (entries below it were compacted into a snapshot). */
  get logFirstIndex(): number {
    return this.storage.firstIndex();
  }

  propose(options: { data: Uint8Array; nowTick: number }): Promise<{ index: number; result: Result }> {
    const { data } = options;
    if (data.byteLength === 0) {
      // An empty entry is a leader's no-op: the state machine never sees it.
      return this.refuse(
        new ConclaveError({ code: 'CONFIG_INVALID', message: 'a proposal must not be empty' }),
      );
    }
    if (this.proposals.size >= this.options.limits.proposalsPendingMax) {
      return this.refuse(
        overloaded(`${this.proposals.size} proposals already wait in group ${this.groupId}`),
      );
    }
    const startedMs = performance.now();
    const proposed = this.raw.propose(data);
    if (!proposed.ok) return this.refuse(proposed.error);
    return new Promise((resolve, reject) => {
      const deadlineTick = options.nowTick + this.options.limits.requestTimeoutTicks;
      this.proposals.set(proposed.index, { term: proposed.term, deadlineTick, startedMs, resolve, reject });
    });
  }

  /** Resolves with the index once this server's state machine may serve the read. */
  read(options: { mode: ReadMode; nowTick: number }): Promise<number> {
    if (this.reads.size >= this.options.limits.readsPendingMax) {
      return Promise.reject(overloaded(`${this.reads.size} reads already wait in group ${this.groupId}`));
    }
    const id = ++this.readSequence;
    const asked = this.raw.readIndex({ context: encodeReadId(id), mode: options.mode });
    if (!asked.ok) return Promise.reject(asked.error);
    return new Promise((resolve, reject) => {
      const deadlineTick = options.nowTick + this.options.limits.requestTimeoutTicks;
      this.reads.set(id, { deadlineTick, resolve, reject, index: null });
    });
  }

  /** Apply what a persisted Ready hands out, then answer the callers it settles. */
  applyReady(ready: NodeReady, options: { nowTick: number }): void {
    if (ready.softState !== null) this.noteLeader(ready.softState.leaderId);
    const startedMs = performance.now();
    if (ready.snapshot !== null) {
      // Only a group's bootstrap snapshot (index 0) is empty: a joiner that receives it has
      // applied nothing, so its fresh state machine already is that state.
      if (ready.snapshot.data.byteLength > 0) {
        this.options.stateMachine.restore(ready.snapshot.data);
        const { index, term } = ready.snapshot.metadata;
        const seconds = (performance.now() - startedMs) / 1000;
        this.observer.snapshotInstalled({ index, term, bytes: ready.snapshot.data.byteLength, seconds });
      }
      // A snapshot being encoded describes older state than the one just installed.
      this.snapshotJob = null;
      this.appliedIndex = ready.snapshot.metadata.index;
      // The log restarts empty after an installed snapshot.
      this.appliedBytes.reset(ready.snapshot.metadata.index);
      this.snapshotIndex = ready.snapshot.metadata.index;
      this.snapshotBytes = ready.snapshot.data.byteLength;
      this.snapshotTimeMs = Date.now();
      this.snapshotTick = options.nowTick;
    }
    for (const entry of ready.committedEntries) {
      const applied =
        entry.type === EntryType.Normal && entry.data.byteLength > 0
          ? { result: this.options.stateMachine.apply(entry) }
          : null;
      this.appliedIndex = entry.index;
      this.appliedBytes.add({ index: entry.index, bytes: entrySizeBytes(entry) });
      if (entry.type === EntryType.ConfChange) {
        const change = decodeConfChange(entry.data);
        this.options.onConfChange?.({ groupId: this.groupId, index: entry.index, change });
        this.observer.confChangeApplied({ index: entry.index, term: entry.term, change });
      }
      this.settleProposal({ index: entry.index, term: entry.term, applied });
    }
    if (ready.committedEntries.length > 0 || ready.snapshot !== null) {
      this.observer.batchApplied((performance.now() - startedMs) / 1000);
    }
    for (const state of ready.readStates) {
      const read = this.reads.get(decodeReadId(state.context));
      if (read !== undefined) read.index = state.index;
    }
    for (const dropped of ready.droppedReads) {
      const id = decodeReadId(dropped.context);
      this.reads.get(id)?.reject(dropped.error);
      this.reads.delete(id);
    }
    this.serveReads();
  }

  /**
   * Start a snapshot when enough has been applied since the last one (entries or bytes), or
   * when the interval passed and the bytes applied since are worth it
   * (snapshotIntervalLogRatioMin of the last snapshot's size). A state machine that encodes in steps
   * is snapshotted over several turns (continueSnapshot), at the index applied now; one that
   * cannot is snapshotted at once. None starts while the previous one is encoded or stored.
   */
  maybeSnapshot(options: { nowTick: number }): void {
    if (this.snapshotJob !== null || this.snapshotWriting || this.installing) return;
    const { snapshotThresholdEntries, snapshotThresholdBytes, snapshotIntervalTicks } = this.options.limits;
    const appliedSince = this.appliedIndex - this.snapshotIndex;
    // O(1): a difference of two running totals, never a walk over the log.
    const bytesSince = this.appliedBytes.bytesBetween({
      after: this.snapshotIndex,
      through: this.appliedIndex,
    });
    const due =
      appliedSince >= snapshotThresholdEntries ||
      (appliedSince > 0 && bytesSince >= snapshotThresholdBytes) ||
      (snapshotIntervalTicks > 0 &&
        appliedSince > 0 &&
        options.nowTick - this.snapshotTick >= snapshotIntervalTicks &&
        bytesSince >= this.snapshotBytes * this.options.limits.snapshotIntervalLogRatioMin);
    if (!due) return;
    // The interval counts from when a snapshot starts, so a slow encoding does not start
    // another one the moment it is saved.
    this.snapshotTick = options.nowTick;
    const steps = this.options.stateMachine.snapshotSteps?.();
    if (steps === undefined) {
      const startedMs = performance.now();
      const data = this.options.stateMachine.snapshot();
      this.saveSnapshot({ index: this.appliedIndex, data, encodeMs: performance.now() - startedMs });
    } else this.snapshotJob = { index: this.appliedIndex, steps, encodeMs: 0 };
  }

  /** Whether a snapshot file is being written in the background (at most one per group). */
  get snapshotWriteInFlight(): boolean {
    return this.snapshotWriting;
  }

  /** Whether a snapshot is being encoded. */
  /**
   * A snapshot from the leader is being made durable (the host's write in flight): the log
   * already shows it, while the applied index moves to it only once the write is durable.
   * No snapshot of this server's own may start or go on meanwhile, since it would describe
   * state older than the log's new floor (createSnapshot refuses that).
   */
  installing = false;

  get snapshotting(): boolean {
    return this.snapshotJob !== null;
  }

  /**
   * Encode more steps of the snapshot under way: at least one, then while the turn's budget
   * lasts (snapshotStepBudgetMs, snapshotStepsPerTurnMax); save it when complete.
   */
  continueSnapshot(): void {
    const job = this.snapshotJob;
    if (job === null) return;
    if (this.installing) {
      // The snapshot being installed is newer than this one, and the log's floor has moved
      // to it already: this one could no longer be recorded.
      this.snapshotJob = null;
      return;
    }
    const { snapshotStepBudgetMs, snapshotStepsPerTurnMax } = this.options.limits;
    const startedMs = performance.now();
    for (let i = 0; i < snapshotStepsPerTurnMax; i++) {
      if (i > 0 && performance.now() - startedMs >= snapshotStepBudgetMs) break;
      const step = job.steps.next();
      if (step.done !== true) continue;
      this.snapshotJob = null;
      const encodeMs = job.encodeMs + performance.now() - startedMs;
      this.saveSnapshot({ index: job.index, data: step.value, encodeMs });
      return;
    }
    job.encodeMs += performance.now() - startedMs;
  }

  /**
   * Hand the snapshot to the log. A log that stores it in the background resolves later:
   * until then the group's snapshot index (and so its policy) stays at the previous snapshot,
   * the log is not compacted, and no other snapshot starts.
   */
  private saveSnapshot(options: { index: number; data: Uint8Array; encodeMs: number }): void {
    const startedMs = performance.now();
    const snapshot = this.raw.createSnapshot({ index: options.index, data: options.data });
    const compactIndex = this.compactionPoint(options.index);
    const saved = () => {
      this.appliedBytes.dropThrough(compactIndex);
      this.snapshotIndex = options.index;
      this.snapshotBytes = options.data.byteLength;
      this.snapshotTimeMs = Date.now();
      this.observer.snapshotTaken({
        index: options.index,
        term: snapshot.metadata.term,
        bytes: options.data.byteLength,
        seconds: (options.encodeMs + performance.now() - startedMs) / 1000,
      });
    };
    const saving = this.options.log.saveSnapshot({ groupId: this.groupId, snapshot, compactIndex });
    if (saving === undefined) {
      saved();
      return;
    }
    this.snapshotWriting = true;
    saving.then(
      (stored) => {
        this.snapshotWriting = false;
        // Not stored (storage closed), or overtaken by a snapshot installed meanwhile: the
        // group's state has moved past this one.
        if (stored && this.snapshotIndex < options.index) saved();
      },
      (error: unknown) => {
        this.snapshotWriting = false;
        // Fail-stop, as when the synchronous write throws out of the host's turn: the disk can
        // no longer be trusted, so the process stops rather than run on (never retried).
        queueMicrotask(() => {
          throw error;
        });
      },
    );
  }

  /**
   * Where to compact behind a snapshot at `index`: keep at most snapshotTrailingEntries
   * entries and at most snapshotTrailingBytesMax bytes of them (the newest), never past the
   * snapshot itself.
   */
  private compactionPoint(index: number): number {
    const { snapshotTrailingEntries, snapshotTrailingBytesMax } = this.options.limits;
    const byCount = index - snapshotTrailingEntries;
    const byBytes = this.appliedBytes.keepWithin({ through: index, bytesMax: snapshotTrailingBytesMax });
    return Math.min(index, Math.max(0, byCount, byBytes));
  }

  /** Fail every caller still waiting: the host is stopping. */
  failAll(error: Error): void {
    for (const proposal of this.proposals.values()) proposal.reject(error);
    for (const read of this.reads.values()) read.reject(error);
    this.proposals.clear();
    this.reads.clear();
  }

  /** Fail requests past their deadline: their outcome is unknown to this server. */
  expire(nowTick: number): void {
    for (const [index, proposal] of this.proposals) {
      if (proposal.deadlineTick > nowTick) continue;
      this.proposals.delete(index);
      this.observer.proposalRefused('TIMEOUT');
      proposal.reject(
        timeout(`the proposal at index ${index} of group ${this.groupId} did not apply in time`),
      );
    }
    for (const [id, read] of this.reads) {
      if (read.deadlineTick > nowTick) continue;
      this.reads.delete(id);
      read.reject(timeout(`a read in group ${this.groupId} was not confirmed in time`));
    }
  }

  private settleProposal(options: { index: number; term: number; applied: { result: Result } | null }): void {
    const { index, term, applied } = options;
    const proposal = this.proposals.get(index);
    if (proposal === undefined) return;
    this.proposals.delete(index);
    if (proposal.term === term && applied !== null) {
      this.observer.proposalApplied((performance.now() - proposal.startedMs) / 1000);
      proposal.resolve({ index, result: applied.result });
    } else {
      // Another leader's entry took this index: the proposal was lost with the old leader.
      this.observer.proposalRefused(RaftErrorCode.NotLeader);
      const status = this.raw.status();
      proposal.reject(
        new RaftError({
          code: RaftErrorCode.NotLeader,
          message: `the proposal at index ${index} was replaced after a leader change; retry`,
          leaderId: status.leaderId,
        }),
      );
    }
  }

  private refuse(error: ConclaveError | RaftError): Promise<never> {
    this.observer.proposalRefused(error.code);
    return Promise.reject(error);
  }

  /**
   * Report a new leader once: a Ready's soft state also changes on role changes that keep
   * the leader (or lose it for a while, leaderId null), which are not leadership changes.
   */
  private noteLeader(leaderId: string | null): void {
    if (leaderId === null) return;
    const { term, commit } = this.raw.status();
    const known = this.knownLeader;
    if (known !== null && known.id === leaderId && known.term === term) return;
    this.knownLeader = { id: leaderId, term };
    this.observer.leaderChanged({ term, commitIndex: commit, leaderId, previousLeaderId: known?.id ?? null });
  }

  private serveReads(): void {
    for (const [id, read] of this.reads) {
      if (read.index !== null && read.index <= this.appliedIndex) {
        read.resolve(read.index);
        this.reads.delete(id);
      }
    }
  }
}

/** Entries read per call while measuring the log at start: bounds the temporary array. */
const measureEntriesPerReadMax = 4096;

/**
 * The sizes of the entries a (re)started group's log already holds, from its compaction point
 * through its snapshot (the entries above it are applied again, and added as they are).
 * Runs once per start; afterwards the sizes are tracked as entries apply.
 */
function trackLoggedBytes(options: { storage: LogStorage; throughIndex: number }): AppliedBytes {
  const { storage, throughIndex } = options;
  const baseIndex = storage.firstIndex() - 1;
  assert(
    baseIndex <= throughIndex,
    () => `log compacted through ${baseIndex}, past its snapshot ${throughIndex}`,
  );
  const tracked = new AppliedBytes({ baseIndex });
  const last = Math.min(throughIndex, storage.lastIndex());
  for (let lo = baseIndex + 1; lo <= last; ) {
    const hi = Math.min(last + 1, lo + measureEntriesPerReadMax);
    for (const entry of storage.entries({ lo, hi, bytesMax: Number.POSITIVE_INFINITY })) {
      tracked.add({ index: entry.index, bytes: entrySizeBytes(entry) });
    }
    lo = hi;
  }
  return tracked;
}

function overloaded(message: string): ConclaveError {
  return new ConclaveError({ code: 'OVERLOADED', message });
}

function timeout(message: string): ConclaveError {
  return new ConclaveError({ code: 'TIMEOUT', message });
}

function encodeReadId(id: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, id);
  return out;
}

function decodeReadId(context: Uint8Array): number {
  return new DataView(context.buffer, context.byteOffset, context.byteLength).getFloat64(0);
}
