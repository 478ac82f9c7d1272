import {
  type ConfChange,
  defaultLimits,
  type Message,
  type NodeId,
  type NodeReady,
  type ProposeResult,
  type RaftConfigInput,
  RaftError,
  type RaftResult,
  type RaftStatus,
  type RawNode,
  type ReadMode,
} from '@conclave/raft';
import { ConclaveError } from '../errors.js';
import {
  isTransferTarget,
  type LeaderView,
  planLeaderTransfer,
  type TransferTargetLimits,
  transferTargetTrailingEntriesMax,
} from './balancer.js';
import { defaultGroupLimits, type GroupLimits, RaftGroup } from './group.js';
import type { HostObserver } from './observer.js';
import type { DurableLog, Envelope, GroupId, GroupWrite, PeerTransport, StateMachine } from './ports.js';

export interface HostOptions<Result> {
  readonly nodeId: NodeId;
  readonly groupCount: number;
  readonly log: DurableLog;
  readonly transport: PeerTransport;
  readonly stateMachine: (groupId: GroupId) => StateMachine<Result>;
  readonly raft?: Partial<Omit<RaftConfigInput, 'id' | 'prng' | 'applied'>>;
  readonly limits?: Partial<GroupLimits>;
  /** Consider moving one leadership every this many ticks (0 turns balancing off). */
  readonly balanceIntervalTicks?: number;
  /** Seed for the groups' election jitter; distinct per server. */
  readonly seed: number;
  /**
   * Called as each membership change is applied, in log order, on every member: how the
   * agent learns a new server's addresses from the change's context.
   */
  readonly onConfChange?: (event: { groupId: GroupId; index: number; change: ConfChange }) => void;
  /** Metrics and event logs (see metrics/): latencies, refusals, leader and snapshot events. */
  readonly observer?: HostObserver;
  /**
   * The period of the caller's ticker and the monotonic clock it runs by (default
   * performance.now). Given, a lease read is served as one only while the ticks kept pace
   * with the clock (see leaseReadTrusted); else ticks are the only time (tests, simulation).
   */
  readonly clock?: { readonly tickMs: number; readonly now?: () => number };
}

/**
 * The part of a host that membership and operator code use, whatever its state machine
 * (a MultiRaftHost<R> is invariant in R, so code that never sees results takes this).
 */
export interface HostControl {
  readonly nodeId: NodeId;
  readonly groupCount: number;
  group(groupId: GroupId): { readonly groupId: GroupId; readonly raw: RawNode };
  proposeConfChange: MultiRaftHost<unknown>['proposeConfChange'];
  transferAllLeadership(): number;
}

/** The most groups one server hosts. */
export const groupCountMax = 1024;

/**
 * Many Raft groups on one server, sharing one durable log, one transport and one ticker.
 * Each turn collects every group's Ready, sends what may go before the write, persists all
 * of them with one fsync, sends the rest, then applies. Turns are scheduled once per
 * event-loop turn, however many inputs arrived, so work batches naturally under load.
 */
export class MultiRaftHost<Result> implements HostControl {
  private readonly groups: RaftGroup<Result>[] = [];
  private turnScheduled = false;
  /** A turn's synced write is in flight (persistInBackground): no new Ready until it is durable. */
  private persisting = false;
  /** Settles when the write in flight does (either way); resolved when none is. */
  private persistSettled: Promise<void> = Promise.resolve();
  private stopped = false;
  private ticks = 0;
  private readonly balanceIntervalTicks: number;
  /** Who leader balancing may hand a leadership to: heard from recently and caught up. */
  private readonly transferTargetLimits: TransferTargetLimits;
  /**
   * Who a leader going away, or an operator, may hand it to: heard from recently, however
   * far behind, since the core catches a target up before handing over.
   */
  private readonly handOverLimits: TransferTargetLimits;
  /** Per group, the term and vote last made durable: a change to either needs an fsync. */
  private readonly durableVotes = new Map<GroupId, { term: number; vote: NodeId | null }>();
  /** With a clock: when each of the last ticks ran, oldest first, the newest being `ticks`. */
  private readonly tickTimesMs: number[] = [];
  private readonly electionTimeoutTicks: number;
  private readonly leaseClockDriftTicks: number;

  constructor(private readonly options: HostOptions<Result>) {
    if (
      !Number.isInteger(options.groupCount) ||
      options.groupCount < 1 ||
      options.groupCount > groupCountMax
    ) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `groups must be an integer in [1, ${groupCountMax}], got ${options.groupCount}`,
      });
    }
    const limits = { ...defaultGroupLimits, ...options.limits };
    for (let groupId = 0; groupId < options.groupCount; groupId++) {
      this.groups.push(
        new RaftGroup({
          groupId,
          nodeId: options.nodeId,
          seed: options.seed * 7919 + groupId,
          log: options.log,
          stateMachine: options.stateMachine(groupId),
          raft: options.raft ?? {},
          limits,
          onConfChange: options.onConfChange,
          observer: options.observer?.group(groupId),
        }),
      );
      const { hardState } = options.log.storage(groupId).initialState();
      this.durableVotes.set(groupId, { term: hardState.term, vote: hardState.vote });
    }
    this.balanceIntervalTicks = options.balanceIntervalTicks ?? 50;
    this.electionTimeoutTicks = options.raft?.electionTimeoutTicks ?? defaultLimits.electionTimeoutTicks;
    this.leaseClockDriftTicks = options.raft?.leaseClockDriftTicks ?? defaultLimits.leaseClockDriftTicks;
    // CheckQuorum's window: a voter silent for an election timeout counts as down. Within it a
    // voter that just went down still looks up; a transfer to it is then abandoned in time.
    this.transferTargetLimits = {
      heardWithinTicks: options.raft?.electionTimeoutTicks ?? defaultLimits.electionTimeoutTicks,
      trailingEntriesMax: transferTargetTrailingEntriesMax,
    };
    this.handOverLimits = { ...this.transferTargetLimits, trailingEntriesMax: Number.POSITIVE_INFINITY };
  }

  get nodeId(): NodeId {
    return this.options.nodeId;
  }

  get groupCount(): number {
    return this.groups.length;
  }

  group(groupId: GroupId): RaftGroup<Result> {
    const group = this.groups[groupId];
    if (group === undefined) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `no group ${groupId} (groups: ${this.groups.length})`,
      });
    }
    return group;
  }

  /** One tick of logical time for every group. The caller's timer decides how long a tick is. */
  tick(): void {
    if (this.stopped) return;
    this.ticks++;
    if (this.options.clock !== undefined) {
      this.tickTimesMs.push(this.clockNow());
      if (this.tickTimesMs.length > this.electionTimeoutTicks + 1) this.tickTimesMs.shift();
    }
    for (const group of this.groups) {
      group.raw.tick();
      group.expire(this.ticks);
      // An idle group gets no turn: its interval snapshot starts here.
      group.maybeSnapshot({ nowTick: this.ticks });
    }
    if (this.balanceIntervalTicks > 0 && this.ticks % this.balanceIntervalTicks === 0) this.balanceLeaders();
    this.scheduleTurn();
  }

  /**
   * Whether the ticks kept pace with the clock, as a lease read needs (always, without a
   * clock). A lease is counted in ticks from a heartbeat round a quorum acknowledged, one
   * started within the last election timeout: the core trusts it while fewer than
   * `electionTimeoutTicks - 1 - leaseClockDriftTicks` ticks have passed since. A process
   * frozen meanwhile (SIGSTOP, a paused VM, a long GC) counted no ticks while the others'
   * clocks ran on: when it wakes, its lease looks as fresh as when it froze, though a new
   * leader may have been elected and have committed writes since. So the lease is trusted
   * only if, since each of the last election timeout's ticks, at most `leaseClockDriftTicks`
   * ticks' worth of time more went by than the ticks counted. Then the time since the
   * round's start is under `electionTimeoutTicks - 1` ticks, within which a voter that
   * acknowledged it votes for nobody else (its ticks are never faster than the clock).
   * Otherwise the read takes a quorum round, which a deposed leader cannot complete.
   */
  private leaseReadTrusted(): boolean {
    const clock = this.options.clock;
    if (clock === undefined) return true;
    const times = this.tickTimesMs;
    if (times.length === 0) return false;
    const now = this.clockNow();
    const slackMs = this.leaseClockDriftTicks * clock.tickMs;
    for (let i = 0; i < times.length; i++) {
      const ticksSince = times.length - 1 - i;
      if (now - (times[i] ?? now) > ticksSince * clock.tickMs + slackMs) return false;
    }
    return true;
  }

  private clockNow(): number {
    return this.options.clock?.now?.() ?? performance.now();
  }

  /** Messages from a peer server, for any of our groups. */
  receive(envelopes: readonly Envelope[]): void {
    if (this.stopped) return;
    for (const { groupId, message } of envelopes) {
      const group = this.groups[groupId];
      if (group === undefined || message.to !== this.options.nodeId) continue;
      try {
        group.raw.step(message);
      } catch (error) {
        // Stepping a message throws only on a broken invariant or a failed storage read (a
        // snapshot file read back to send it to a follower): the core may be half-way
        // through a change, so the process stops, whatever the caller does with the throw.
        if (!(error instanceof RaftError)) {
          queueMicrotask(() => {
            throw error;
          });
        }
        throw error;
      }
    }
    this.scheduleTurn();
  }

  propose(options: { groupId: GroupId; data: Uint8Array }): Promise<{ index: number; result: Result }> {
    if (this.stopped) return Promise.reject(shuttingDown());
    const promise = this.group(options.groupId).propose({ data: options.data, nowTick: this.ticks });
    this.scheduleTurn();
    return promise;
  }

  read(options: { groupId: GroupId; mode: ReadMode }): Promise<number> {
    if (this.stopped) return Promise.reject(shuttingDown());
    const mode = options.mode === 'lease' && !this.leaseReadTrusted() ? 'quorum' : options.mode;
    const promise = this.group(options.groupId).read({ mode, nowTick: this.ticks });
    this.scheduleTurn();
    return promise;
  }

  /**
   * Propose a single-server membership change in one group (leader only; one pending at a
   * time: CONF_CHANGE_PENDING otherwise). The outcome is known when the change is applied.
   */
  proposeConfChange(options: {
    groupId: GroupId;
    change: ConfChange;
  }): ProposeResult | { ok: false; error: ConclaveError } {
    if (this.stopped) return { ok: false, error: shuttingDown() };
    const result = this.group(options.groupId).raw.proposeConfChange(options.change);
    this.scheduleTurn();
    return result;
  }

  /**
   * Start handing the group's leadership to `to`, named by an operator (leader only). A
   * voter this leader has not heard from recently is refused: the transfer would hold the
   * group's writes for an election timeout and then fail. A lagging one is caught up first.
   */
  transferLeader(options: {
    groupId: GroupId;
    to: NodeId;
  }): RaftResult | { ok: false; error: ConclaveError } {
    if (this.stopped) return { ok: false, error: shuttingDown() };
    const raw = this.group(options.groupId).raw;
    const status = raw.status();
    const view = leaderViewOf(status);
    const limits = this.handOverLimits;
    // Anything else (not the leader, not another voter) the core refuses with its own error.
    if (
      view !== null &&
      status.confState.voters.includes(options.to) &&
      options.to !== status.id &&
      !isTransferTarget({ id: options.to, view, limits })
    ) {
      const heard = status.progress?.get(options.to)?.sinceHeardTicks ?? null;
      const silence =
        heard === null
          ? 'in this term'
          : `for ${heard} ticks (an election timeout is ${limits.heardWithinTicks})`;
      const message = `${options.to} has not answered ${status.id}, the leader of group ${options.groupId}, ${silence}: it may be down or cut off`;
      return { ok: false, error: new ConclaveError({ code: 'TRANSFER_TARGET_UNAVAILABLE', message }) };
    }
    const started = raw.transferLeader(options.to);
    this.scheduleTurn();
    return started;
  }

  /** Hand every group this server leads to another voter, for a clean shutdown. */
  transferAllLeadership(): number {
    let started = 0;
    for (const group of this.groups) {
      const status = group.raw.status();
      const view = leaderViewOf(status);
      if (view === null) continue;
      // The most caught-up voter heard from recently: the first voter in the list may be
      // down or far behind, and a transfer to it would only time out. A lagging one will do:
      // this leader is going away, and the core catches the target up before handing over.
      const limits = this.handOverLimits;
      const to = status.confState.voters
        .filter((id) => id !== this.options.nodeId && isTransferTarget({ id, view, limits }))
        .map((id) => ({ id, match: view.progress.get(id)?.match ?? 0 }))
        .sort((a, b) => b.match - a.match)[0]?.id;
      if (to !== undefined && group.raw.transferLeader(to).ok) started++;
    }
    this.scheduleTurn();
    return started;
  }

  /** Run every pending turn now (tests and shutdown), then stop accepting work. */
  stop(): void {
    this.runTurns({ turnsMax: drainTurnsMax });
    this.stopped = true;
    for (const group of this.groups) group.failAll(shuttingDown());
  }

  /** Resolves once no write is in flight: after stop(), the storage may then be closed. */
  writesSettled(): Promise<void> {
    return this.persistSettled;
  }

  /**
   * Run up to `turnsMax` turns while groups have work, then leave the rest to the next
   * event-loop iteration: the synchronous core of the loop.
   */
  runTurns(options: { turnsMax: number } = { turnsMax: turnsPerFlushMax }): void {
    // Keep going while a turn produces more work (applies can trigger commits and reads),
    // but yield to the event loop after a bounded number of turns.
    for (let i = 0; i < options.turnsMax; i++) if (!this.turn()) return;
    this.scheduleTurn();
  }

  private scheduleTurn(): void {
    if (this.turnScheduled || this.stopped) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      if (!this.stopped) this.runTurns();
    });
  }

  /** One turn of the loop. Returns whether any group had work, or still has. */
  private turn(): boolean {
    const snapshotting = this.continueSnapshots();
    // While a batch's fdatasync is in flight, the groups' cores take messages, ticks and
    // proposals, but give no new Ready: its completion finishes the turn and schedules the next.
    if (this.persisting) {
      // Heartbeats and appends do not wait on the disk (RawNode.takeMessages).
      this.sendAll(this.groups.flatMap((group) => envelopes(group.groupId, group.raw.takeMessages())));
      this.options.transport.flush?.();
      return snapshotting;
    }
    const working = this.groups.filter((group) => group.raw.hasReady());
    if (working.length === 0) return snapshotting;
    const readies = working.map((group) => ({ group, ready: group.raw.ready() }));
    // A leader's messages may leave before its own write (Raft thesis §10.2.1).
    this.sendAll(readies.flatMap(({ group, ready }) => envelopes(group.groupId, ready.messages)));
    this.options.transport.flush?.();
    const writes: GroupWrite[] = [];
    for (const { group, ready } of readies) {
      if (ready.entries.length > 0 || ready.hardState !== null || ready.snapshot !== null) {
        writes.push({
          groupId: group.groupId,
          entries: ready.entries,
          hardState: ready.hardState,
          snapshot: ready.snapshot,
        });
      }
    }
    const sync = this.mustSync(writes);
    const { persistAsync } = this.options.log;
    if (sync && persistAsync !== undefined) {
      this.persistInBackground({ readies, writes, persistAsync: persistAsync.bind(this.options.log) });
      return false;
    }
    if (writes.length > 0) this.persist(writes, { sync });
    this.finishTurn(readies);
    return true;
  }

  /**
   * The rest of a turn once its writes are durable: acknowledgements leave, committed
   * entries apply, and the cores learn what is stable.
   */
  private finishTurn(readies: readonly { group: RaftGroup<Result>; ready: NodeReady }[]): void {
    this.sendAll(readies.flatMap(({ group, ready }) => envelopes(group.groupId, ready.messagesAfterPersist)));
    // Acknowledgements leave now, not at the transport's own flush in the next loop iteration.
    this.options.transport.flush?.();
    for (const { group, ready } of readies) {
      group.applyReady(ready, { nowTick: this.ticks });
      group.raw.advance();
      group.maybeSnapshot({ nowTick: this.ticks });
    }
  }

  /**
   * A synced write whose fdatasync runs on the thread pool: the event loop keeps receiving
   * heartbeats, ticking and serving while the disk is slow (measured: 250-500 ms syncs
   * under snapshot writes held the loop and lost leaderships). The turn finishes when the
   * write is durable. A failed write stops the process, as a synchronous one does.
   */
  private persistInBackground(options: {
    readies: readonly { group: RaftGroup<Result>; ready: NodeReady }[];
    writes: readonly GroupWrite[];
    persistAsync: (writes: readonly GroupWrite[]) => Promise<void>;
  }): void {
    const { readies, writes } = options;
    this.persisting = true;
    for (const { group, ready } of readies) if (ready.snapshot !== null) group.installing = true;
    const startedMs = performance.now();
    let done: Promise<void>;
    try {
      done = options.persistAsync(writes);
    } catch (error) {
      done = Promise.reject(error);
    }
    this.persistSettled = done.then(
      () => undefined,
      () => undefined,
    );
    done.then(
      () => {
        this.persisting = false;
        for (const { group } of readies) group.installing = false;
        this.options.observer?.persisted(true, (performance.now() - startedMs) / 1000);
        this.noteDurableVotes(writes);
        // A stopped host has failed its waiters; nothing of this turn may be acted on.
        if (this.stopped) return;
        try {
          this.finishTurn(readies);
        } catch (error) {
          // As in a synchronous turn: a throw here is a broken invariant, and stops the process.
          failStop(error);
          return;
        }
        this.scheduleTurn();
      },
      // The cores think these writes are on their way; nothing can continue from here.
      failStop,
    );
  }

  /**
   * Whether a write needs an fdatasync before messages leave or entries apply: entries, a
   * snapshot, or a new term or vote. A hard state whose only change is the commit index may
   * be lost in a crash (Raft learns the commit index again from the leader), so a turn that
   * only commits, which at low load is every other turn, saves an fsync from each write's
   * latency.
   */
  private mustSync(writes: readonly GroupWrite[]): boolean {
    return writes.some((write) => {
      if (write.entries.length > 0 || write.snapshot !== null) return true;
      if (write.hardState === null) return false;
      const durable = this.durableVotes.get(write.groupId);
      return durable?.term !== write.hardState.term || durable.vote !== write.hardState.vote;
    });
  }

  /** One write for every group's Ready, synchronous; an fdatasync when `sync`. */
  private persist(writes: readonly GroupWrite[], options: { sync: boolean }): void {
    const startedMs = performance.now();
    this.options.log.persist(writes, options);
    this.options.observer?.persisted(options.sync, (performance.now() - startedMs) / 1000);
    if (options.sync) this.noteDurableVotes(writes);
  }

  private noteDurableVotes(writes: readonly GroupWrite[]): void {
    for (const { groupId, hardState } of writes) {
      if (hardState !== null) this.durableVotes.set(groupId, { term: hardState.term, vote: hardState.vote });
    }
  }

  /**
   * A few steps of each snapshot being encoded, one turn at a time: encoding a large state
   * at once would hold the loop past an election timeout. Returns whether any remain.
   */
  private continueSnapshots(): boolean {
    let remaining = false;
    for (const group of this.groups) {
      if (!group.snapshotting) continue;
      group.continueSnapshot();
      remaining ||= group.snapshotting;
    }
    return remaining;
  }

  /** One batch per peer per turn, whatever the number of groups. */
  private sendAll(all: readonly Envelope[]): void {
    if (all.length === 0) return;
    const byPeer = new Map<NodeId, Envelope[]>();
    for (const envelope of all) {
      const batch = byPeer.get(envelope.message.to);
      if (batch === undefined) byPeer.set(envelope.message.to, [envelope]);
      else batch.push(envelope);
    }
    for (const [peer, batch] of byPeer) this.options.transport.send(peer, batch);
  }

  private balanceLeaders(): void {
    const groups = this.groups.map((group) => {
      const status = group.raw.status();
      const leaderView = leaderViewOf(status);
      return {
        groupId: group.groupId,
        leaderId: status.leaderId,
        voters: status.confState.voters,
        leaderView,
      };
    });
    const move = planLeaderTransfer({
      self: this.options.nodeId,
      groups,
      limits: this.transferTargetLimits,
    });
    if (move !== null) this.group(move.groupId).raw.transferLeader(move.to);
  }
}

/** What a group's leader knows of its members' progress; null on any other role. */
function leaderViewOf(status: RaftStatus): LeaderView | null {
  return status.progress === null ? null : { lastIndex: status.lastIndex, progress: status.progress };
}

/**
 * Turns per event-loop iteration. One: each turn ends in an fsync, and yielding between
 * turns lets the acknowledgements and proposals that arrived meanwhile join the next one,
 * instead of starving timers and sockets (measured: 64 turns back to back held the loop
 * for ~90 ms at p99 under 256 proposals in flight to one group).
 */
const turnsPerFlushMax = 1;
/** Bounds the drain on stop, so a stop always finishes. */
const drainTurnsMax = 64;

function envelopes(groupId: GroupId, messages: readonly Message[]): Envelope[] {
  return messages.map((message) => ({ groupId, message }));
}

/** Rethrown outside any promise chain, so it reaches the process as an uncaught exception. */
function failStop(error: unknown): void {
  setImmediate(() => {
    throw error;
  });
}

function shuttingDown(): ConclaveError {
  return new ConclaveError({ code: 'SHUTTING_DOWN', message: 'this server is shutting down' });
}
