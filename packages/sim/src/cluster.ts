import {
  type ConfChangeType,
  type ConfState,
  EntryType,
  MemoryStorage,
  type NodeId,
  type ProgressStatus,
  type RaftLimits,
} from '@conclave/raft';
import { type AppliedView, SafetyCheckers } from './checkers.js';
import { type DiskOptions, defaultDiskOptions, type NodeStore, SimDisk } from './disk.js';
import { EventQueue } from './event-queue.js';
import type { KvApplyOutcome, KvCommand, RequestId } from './kv.js';
import { sameRequest } from './kv.js';
import {
  type Delivery,
  defaultNetworkLimits,
  longReorderingConditions,
  Network,
  type NetworkConditions,
  reliableConditions,
  unreliableConditions,
} from './network.js';
import { type AppliedRecord, type NodeEvent, type ReadRequest, SimNode, summarizeMessage } from './node.js';
import { Rng } from './rng.js';
import { Trace } from './trace.js';
import { WalDisk } from './wal-disk.js';

/**
 * The scripting API of the simulated world: a cluster of nodes running the production Raft
 * core over a simulated network and disks, in virtual time, with the safety checkers
 * watching every event. Everything is a pure function of the seed and the script.
 * Nodes are numbered 0..n-1; node i has Raft id `n${i}`. See docs/simulation.md.
 */

export interface ClusterOptions {
  readonly seed: number;
  /** Cluster size; the suites use 3 or 5. */
  readonly nodes: number;
  /** Virtual time between two ticks of a node's clock. */
  readonly tickMs?: number;
  readonly electionTimeoutTicks?: number;
  readonly heartbeatIntervalTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** Any other core limit (inflight messages, message bytes...). */
  readonly raftLimits?: Partial<RaftLimits>;
  /** Each node's clock rate is drawn in [1 - max, 1 + max]; 0 keeps clocks exact. */
  readonly clockSkewMax?: number;
  /** Snapshot once this many entries were applied past the last snapshot; null/absent: never. */
  readonly snapshotThresholdEntries?: number | null;
  /** Entries kept behind a snapshot. */
  readonly snapshotTrailingEntries?: number;
  /** Start with the unreliable network profile (loss, duplicates, jitter). */
  readonly unreliable?: boolean;
  /** Start with a few messages delayed by up to several election timeouts. */
  readonly longReordering?: boolean;
  readonly network?: {
    readonly linkLatencyMinMs?: number;
    readonly linkLatencyMaxMs?: number;
    readonly linkQueueMessagesMax?: number;
  };
  readonly disk?: Partial<DiskOptions>;
  /**
   * `memory` (default): the in-memory disk model. `wal`: each node runs the server's real
   * WAL and snapshot store (DurableStorage) over a faulty simulated disk; see wal-disk.ts.
   */
  readonly storage?: StorageMode;
  /** Keep the trace's lines in memory (for --trace); the hash is always kept. */
  readonly keepTrace?: boolean;
  readonly traceLinesMax?: number;
}

export type StorageMode = 'memory' | 'wal';

/** A KV command as a script writes it; the cluster assigns a request id when none is given. */
export type KvCommandInput = KvCommand extends infer C
  ? C extends KvCommand
    ? Omit<C, 'requestId'> & { readonly requestId?: RequestId }
    : never
  : never;

export interface ProposeResult {
  readonly index: number;
  readonly term: number;
  readonly isLeader: boolean;
}

/** A single-server membership change, naming the node by its index. */
export interface MembershipChange {
  readonly type: ConfChangeType;
  readonly node: number;
}

/** A membership as node indexes, in the order the core lists them. */
export interface Members {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

export type ConfChangeResult =
  | { readonly ok: true; readonly index: number; readonly term: number; readonly via: number }
  | {
      readonly ok: false;
      /** The core's error code (NOT_LEADER, CONF_CHANGE_PENDING, ...); NOT_LEADER when no node leads. */
      readonly errorCode: string;
      /** The node asked, or null when there was no leader to ask. */
      readonly via: number | null;
    };

export interface ClusterStats {
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly messagesDelivered: number;
  readonly bytesDelivered: number;
  readonly messagesDropped: number;
  readonly messagesDuplicated: number;
  readonly eventsProcessed: number;
  readonly nowMs: number;
}

export interface ApplyEvent {
  readonly node: number;
  readonly record: AppliedRecord;
  readonly outcome: KvApplyOutcome | null;
}

/** A read finished at a node: served (`ok`, with the value at `index` or later) or failed. */
export type ReadEvent =
  | {
      readonly node: number;
      readonly request: ReadRequest;
      readonly ok: true;
      readonly index: number;
      readonly value: string | null;
    }
  | {
      readonly node: number;
      readonly request: ReadRequest;
      readonly ok: false;
      readonly index: -1;
      readonly value: null;
      readonly errorCode: string;
    };

type WorldEvent =
  | NodeEvent
  | { readonly kind: 'deliver'; readonly delivery: Delivery }
  | { readonly kind: 'action'; readonly label: string; readonly run: () => void };

export const clusterDefaults = {
  tickMs: 10,
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  snapshotTrailingEntries: 5,
  /** one(): how long to wait for agreement overall, and on one attempt's index. */
  oneTimeoutMs: 10_000,
  oneAttemptTimeoutMs: 2_000,
  /** one(): pause between rounds of asking every node when none is leader. */
  oneRetryPauseMs: 50,
} as const;

export class Cluster {
  readonly seed: number;
  readonly network: Network;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly storage: StorageMode;
  readonly #nodes: SimNode[];
  readonly #ids: NodeId[];
  readonly #indexById = new Map<NodeId, number>();
  readonly #queue = new EventQueue<WorldEvent>();
  readonly #checkers: SafetyCheckers;
  readonly #trace: Trace;
  readonly #applyListeners = new Set<(event: ApplyEvent) => void>();
  readonly #readListeners = new Set<(event: ReadEvent) => void>();
  /** Nodes to crash while their next write is syncing. */
  readonly #crashOnWrite = new Set<number>();
  /** Torn-write crashes already queued for a write in flight, still wanted. */
  readonly #crashScheduled = new Set<number>();
  #unreliable: boolean;
  #longReordering: boolean;
  #nowMs = 0;
  #eventsProcessed = 0;
  #commandSeq = 0;

  private constructor(options: ClusterOptions) {
    const n = options.nodes;
    if (!Number.isSafeInteger(n) || n < 1 || n > 9)
      throw new RangeError(`Cluster: nodes must be in 1..9, got ${n}`);
    if (!Number.isSafeInteger(options.seed)) throw new RangeError(`Cluster: seed must be an integer`);
    const seed = options.seed;
    this.seed = seed;
    this.tickMs = options.tickMs ?? clusterDefaults.tickMs;
    this.electionTimeoutTicks = options.electionTimeoutTicks ?? clusterDefaults.electionTimeoutTicks;
    if (!(this.tickMs > 0)) throw new RangeError('Cluster: tickMs must be positive');
    this.storage = options.storage ?? 'memory';
    this.#unreliable = options.unreliable ?? false;
    this.#longReordering = options.longReordering ?? false;
    this.#trace = new Trace({
      keepLines: options.keepTrace ?? false,
      ...(options.traceLinesMax === undefined ? {} : { linesMax: options.traceLinesMax }),
    });
    this.#checkers = new SafetyCheckers({ seed, nowMs: () => this.#nowMs });
    this.network = new Network({
      nodeCount: n,
      linkLatencyMinMs: options.network?.linkLatencyMinMs ?? defaultNetworkLimits.linkLatencyMinMs,
      linkLatencyMaxMs: options.network?.linkLatencyMaxMs ?? defaultNetworkLimits.linkLatencyMaxMs,
      linkQueueMessagesMax:
        options.network?.linkQueueMessagesMax ?? defaultNetworkLimits.linkQueueMessagesMax,
      conditions: this.#conditions(),
      rng: Rng.fork({ seed, label: 'network' }),
    });
    this.#ids = Array.from({ length: n }, (_, i) => `n${i}`);
    this.#ids.forEach((id, i) => {
      this.#indexById.set(id, i);
    });
    const skewMax = options.clockSkewMax ?? 0;
    if (!(skewMax >= 0 && skewMax < 0.5)) throw new RangeError('Cluster: clockSkewMax must be in [0, 0.5)');
    const clockRng = Rng.fork({ seed, label: 'clock' });
    const diskOptions: DiskOptions = { ...defaultDiskOptions, ...options.disk };
    const raft = {
      ...options.raftLimits,
      electionTimeoutTicks: this.electionTimeoutTicks,
      heartbeatIntervalTicks: options.heartbeatIntervalTicks ?? clusterDefaults.heartbeatIntervalTicks,
      ...(options.preVote === undefined ? {} : { preVote: options.preVote }),
      ...(options.checkQuorum === undefined ? {} : { checkQuorum: options.checkQuorum }),
    };
    const env = this.#environment();
    this.#nodes = this.#ids.map(
      (id, index) =>
        new SimNode({
          index,
          id,
          seed,
          disk: this.#store({ seed, index, diskOptions }),
          raft,
          tickMs: this.tickMs,
          clockRate: 1 + clockRng.floatBetween({ min: -skewMax, max: skewMax }),
          snapshotThresholdEntries: options.snapshotThresholdEntries ?? null,
          snapshotTrailingEntries: options.snapshotTrailingEntries ?? clusterDefaults.snapshotTrailingEntries,
          env,
        }),
    );
  }

  #store(options: { seed: number; index: number; diskOptions: DiskOptions }): NodeStore {
    const { seed, index, diskOptions } = options;
    const latencyRng = Rng.fork({ seed, label: `disk/${index}` });
    if (this.storage === 'memory') {
      return new SimDisk({
        storage: MemoryStorage.bootstrap({ voters: this.#ids }),
        disk: diskOptions,
        rng: latencyRng,
      });
    }
    return new WalDisk({
      voters: this.#ids,
      disk: diskOptions,
      latencyRng,
      diskRng: Rng.fork({ seed, label: `simdisk/${index}` }),
    });
  }

  /** Build the world and boot every node at virtual time 0. */
  static create(options: ClusterOptions): Cluster {
    const cluster = new Cluster(options);
    for (const node of cluster.#nodes) node.start();
    return cluster;
  }

  get nodeCount(): number {
    return this.#nodes.length;
  }

  get nowMs(): number {
    return this.#nowMs;
  }

  /** The simulated server itself, for tests that need more than this API. */
  node(i: number): SimNode {
    return this.#node(i);
  }

  nodeId(i: number): NodeId {
    return this.#node(i).id;
  }

  // ---- Faults. Each is traced, so the trace hash covers the script too.

  /** MIT 6.824's disconnect: node i reaches no one, and no one reaches it. */
  disconnect(i: number): void {
    this.#fault(`disconnect n${i}`, () => this.network.disconnect(i));
  }

  connect(i: number): void {
    this.#fault(`connect n${i}`, () => this.network.connect(i));
  }

  /** Power loss at node i: volatile state gone, unsynced write lost or torn. No-op if down. */
  crash(i: number): void {
    this.#fault(`crash n${i}`, () => this.#node(i).crash());
  }

  /**
   * Crash node i while its next write is in flight (before the fsync completes), so the
   * disk model decides what of it survives: nothing, or a torn prefix.
   */
  crashDuringNextWrite(i: number): void {
    this.#node(i);
    this.#fault(`crashDuringNextWrite n${i}`, () => this.#crashOnWrite.add(i));
  }

  /** Forget crashDuringNextWrite requests not yet triggered: node `node`'s, or everyone's. */
  cancelCrashesDuringWrite(options: { node?: number } = {}): void {
    const { node } = options;
    if (node === undefined) {
      if (this.#crashOnWrite.size > 0 || this.#crashScheduled.size > 0)
        this.#fault('cancel crashes during write', () => {
          this.#crashOnWrite.clear();
          this.#crashScheduled.clear();
        });
      return;
    }
    if (this.#crashOnWrite.has(node) || this.#crashScheduled.has(node)) {
      this.#fault(`cancel crash during write n${node}`, () => {
        this.#crashOnWrite.delete(node);
        this.#crashScheduled.delete(node);
      });
    }
  }

  /**
   * Erase node i's disk, crashing it first if it runs; it stays down. Its next start
   * (rejoin(i), or restart(i)) boots a brand-new server with the same id: empty log, no
   * membership, term 0, no vote. Only safe for a node outside the membership whose
   * removal every other node has durably committed: see docs/simulation.md.
   */
  wipe(i: number): void {
    const node = this.#node(i);
    this.#fault(`wipe n${i}`, () => {
      this.#crashOnWrite.delete(i);
      node.wipe();
    });
  }

  /**
   * Boot node i, which must be down, from whatever its disk holds: after wipe(i), an empty
   * server that refuses entries until a leader sends it a snapshot. It joins the group
   * once a membership change adds it (proposeConfChange, reconfigure).
   */
  rejoin(i: number): void {
    const node = this.#node(i);
    if (node.alive) throw new Error(`rejoin(${i}): n${i} is running`);
    this.#fault(`rejoin n${i}${node.disk.empty ? ' empty' : ''}`, () => node.start());
  }

  /** Boot node i from its durable state; crashes it first if it is running. */
  restart(i: number): void {
    this.#fault(`restart n${i}`, () => {
      const node = this.#node(i);
      node.crash();
      node.start();
    });
  }

  /**
   * wal storage: the next `afterSyncs + 1`-th fsync on node i's disk fails with EIO. The
   * node stops when it sees the error (it never retries) and recovers from disk on restart.
   */
  failSync(i: number, options: { afterSyncs?: number } = {}): void {
    const disk = this.#walDisk(i);
    const afterSyncs = options.afterSyncs ?? 0;
    this.#fault(`failSync n${i} after ${afterSyncs}`, () => disk.simDisk.failSync({ afterSyncs }));
  }

  /**
   * wal storage: bit rot on node i while it is down (it is crashed first): one byte of a
   * WAL frame other than the last, or of a snapshot file. Its next start refuses if
   * recovery detects the damage (it must); the node then stays down. Returns the spot hit,
   * or null when the disk had nothing to damage.
   */
  bitflip(i: number, rng: Rng): string | null {
    const node = this.#node(i);
    const disk = this.#walDisk(i);
    let hit: string | null = null;
    this.#fault(`bitflip n${i}`, () => {
      this.#crashOnWrite.delete(i);
      this.#crashScheduled.delete(i);
      node.crash();
      hit = disk.corruptAtRest(rng);
      this.note(`bitflip n${i} ${hit ?? 'nothing to damage'}`);
    });
    return hit;
  }

  /** Why node i refused to start (its disk failed recovery), or null. */
  refused(i: number): string | null {
    return this.#node(i).refused;
  }

  #walDisk(i: number): WalDisk {
    const disk = this.#node(i).disk;
    if (!(disk instanceof WalDisk)) throw new Error(`n${i}: needs storage 'wal'`);
    return disk;
  }

  /** Symmetric partition into groups; a node in no group is isolated. Replaces any shape. */
  partition(groups: readonly (readonly number[])[]): void {
    this.#fault(`partition ${groups.map((g) => g.join(',')).join('|')}`, () =>
      this.network.partition(groups),
    );
  }

  /** All links up and all nodes connected. */
  heal(): void {
    this.#fault('heal', () => this.network.heal());
  }

  isolate(i: number): void {
    this.#fault(`isolate n${i}`, () => this.network.isolate(i));
  }

  split(options: { minority: readonly number[] }): void {
    this.#fault(`split ${options.minority.join(',')}`, () => this.network.split(options));
  }

  cutLink(link: { from: number; to: number }): void {
    this.#fault(`cut n${link.from}>n${link.to}`, () => this.network.cutLink(link));
  }

  restoreLink(link: { from: number; to: number }): void {
    this.#fault(`restore n${link.from}>n${link.to}`, () => this.network.restoreLink(link));
  }

  ring(options: { order?: readonly number[] } = {}): void {
    this.#fault(`ring ${options.order?.join(',') ?? ''}`, () => this.network.ring(options));
  }

  bridge(options: { bridge: number; halves?: readonly [readonly number[], readonly number[]] }): void {
    this.#fault(`bridge n${options.bridge}`, () => this.network.bridge(options));
  }

  setUnreliable(unreliable: boolean): void {
    this.#unreliable = unreliable;
    this.#fault(`unreliable ${unreliable}`, () => this.network.setConditions(this.#conditions()));
  }

  setLongReordering(longReordering: boolean): void {
    this.#longReordering = longReordering;
    this.#fault(`longReordering ${longReordering}`, () => this.network.setConditions(this.#conditions()));
  }

  /** Replace the network conditions outright (the fault schedule's drop rates, etc.). */
  setNetworkConditions(conditions: NetworkConditions): void {
    this.#fault(`conditions drop ${conditions.dropRate} dup ${conditions.duplicateRate}`, () =>
      this.network.setConditions(conditions),
    );
  }

  // ---- Client operations.

  /** A full command for `input`, with a fresh request id unless it carries one. */
  command(input: KvCommandInput): KvCommand {
    const requestId = input.requestId ?? { clientId: 'cluster', seq: ++this.#commandSeq };
    return { ...input, requestId } as KvCommand;
  }

  /** Propose through node i. Like MIT's Start: isLeader false means "try another node". */
  propose(i: number, input: KvCommandInput): ProposeResult {
    const node = this.#node(i);
    const outcome = node.propose(this.command(input));
    if (!outcome.ok) return { index: -1, term: outcome.term, isLeader: false };
    return { index: outcome.index, term: outcome.term, isLeader: true };
  }

  /** Start a ReadIndex read at node i; the value arrives through onRead listeners. */
  read(i: number, request: ReadRequest): { ok: boolean; errorCode: string | null } {
    const result = this.#node(i).read(request);
    return result.ok ? { ok: true, errorCode: null } : { ok: false, errorCode: result.error?.code ?? null };
  }

  /** Ask node i to start an election now. */
  campaign(i: number): void {
    this.#node(i).campaign();
  }

  /** Hand leadership from node i (the leader) to node `to`. */
  transferLeader(options: { from: number; to: number }): boolean {
    return this.#node(options.from).transferLeader(this.nodeId(options.to)).ok;
  }

  /**
   * Propose a single-server membership change through node `via` (default: the current
   * leader). It takes effect on each node when applied; one may be pending at a time
   * (CONF_CHANGE_PENDING). Traced, so it counts towards the trace hash.
   */
  proposeConfChange(change: MembershipChange, options: { via?: number } = {}): ConfChangeResult {
    this.#node(change.node);
    const via = options.via ?? this.leaderOf();
    const what = `confChange ${change.type} n${change.node}`;
    if (via === null) {
      this.#fault(`${what} (no leader)`, () => {});
      return { ok: false, errorCode: 'NOT_LEADER', via: null };
    }
    const outcome = this.#node(via).proposeConfChange({
      type: change.type,
      nodeId: this.nodeId(change.node),
    });
    const result: ConfChangeResult = outcome.ok
      ? { ok: true, index: outcome.index, term: outcome.term, via }
      : { ok: false, errorCode: outcome.error?.code ?? 'NOT_LEADER', via };
    this.#fault(`${what} via n${via} ${result.ok ? `@${result.index}` : result.errorCode}`, () => {});
    return result;
  }

  /**
   * Make a membership change and wait until the leader has applied it (like one() for
   * membership): propose through the leader, retrying on NOT_LEADER, CONF_CHANGE_PENDING,
   * TRANSFER_IN_PROGRESS or a proposal that got lost, until the leader's membership shows
   * the change. Returns at once if it already does; throws after `timeoutMs`, or when the
   * change is invalid (CONF_CHANGE_INVALID) while not yet in effect.
   */
  reconfigure(change: MembershipChange, options: { timeoutMs?: number } = {}): void {
    const deadlineMs = this.#nowMs + (options.timeoutMs ?? clusterDefaults.oneTimeoutMs);
    const done = (): boolean => {
      const members = this.members();
      return members !== null && membershipShows(members, change);
    };
    while (!done()) {
      if (this.#nowMs >= deadlineMs) {
        throw new Error(
          `reconfigure(${change.type} n${change.node}): not in effect within the timeout (seed ${this.seed})`,
        );
      }
      const result = this.proposeConfChange(change);
      if (result.ok) {
        const attemptMs = Math.min(clusterDefaults.oneAttemptTimeoutMs, deadlineMs - this.#nowMs);
        this.runUntil(done, { timeoutMs: Math.max(0, attemptMs) });
      } else if (result.errorCode === 'CONF_CHANGE_INVALID') {
        if (done()) return;
        throw new Error(
          `reconfigure(${change.type} n${change.node}): invalid against ${JSON.stringify(this.members())}`,
        );
      } else {
        this.advance(Math.min(clusterDefaults.oneRetryPauseMs, Math.max(0, deadlineMs - this.#nowMs)));
      }
    }
  }

  /** Called for every applied command entry on every node; returns an unsubscribe function. */
  onApply(listener: (event: ApplyEvent) => void): () => void {
    this.#applyListeners.add(listener);
    return () => this.#applyListeners.delete(listener);
  }

  onRead(listener: (event: ReadEvent) => void): () => void {
    this.#readListeners.add(listener);
    return () => this.#readListeners.delete(listener);
  }

  /**
   * Tell the checkers a client was told "committed" for the entry at `index` (as applied on
   * some node): from now on it must never be lost or replaced.
   */
  acknowledgeWrite(index: number): void {
    for (const node of this.#nodes) {
      const record = node.appliedEntry(index);
      if (record === undefined) continue;
      this.#checkers.onAck({
        entry: { index, term: record.term, type: EntryType.Normal, data: record.data },
      });
      return;
    }
    throw new Error(`acknowledgeWrite(${index}): no node has applied it`);
  }

  // ---- Time.

  /** Run `run` at virtual time now + afterMs, ordered with every other event. */
  schedule(options: { afterMs: number; label: string; run: () => void }): void {
    if (!(options.afterMs >= 0)) throw new RangeError(`schedule: afterMs must be >= 0`);
    this.#queue.push({
      atMs: this.#nowMs + options.afterMs,
      event: { kind: 'action', label: options.label, run: options.run },
    });
  }

  /** Run every event due in the next `ms` of virtual time. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance: ms must be >= 0`);
    const targetMs = this.#nowMs + ms;
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.atMs > targetMs) break;
      this.#step();
    }
    this.#nowMs = targetMs;
  }

  /**
   * Run events until `predicate` holds (checked before the first and after every event)
   * or `timeoutMs` of virtual time passed. Returns whether it holds.
   */
  runUntil(predicate: () => boolean, options: { timeoutMs: number }): boolean {
    const deadlineMs = this.#nowMs + options.timeoutMs;
    if (predicate()) return true;
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.atMs > deadlineMs) break;
      this.#step();
      if (predicate()) return true;
    }
    this.#nowMs = deadlineMs;
    return predicate();
  }

  // ---- Observation.

  isAlive(i: number): boolean {
    return this.#node(i).alive;
  }

  isConnected(i: number): boolean {
    return this.network.isConnected(i);
  }

  isLeader(i: number): boolean {
    return this.#node(i).isLeader();
  }

  /** The leader node i believes in, or null. */
  leader(i: number): number | null {
    const id = this.#node(i).leaderId();
    return id === null ? null : (this.#indexById.get(id) ?? null);
  }

  term(i: number): number {
    return this.#node(i).term();
  }

  /** The command entries node i applied, in index order, over all its lives. */
  applied(i: number): readonly { readonly index: number; readonly command: KvCommand }[] {
    const out: { index: number; command: KvCommand }[] = [];
    for (const record of this.#node(i).appliedRecords()) {
      if (record.command !== null) out.push({ index: record.index, command: record.command });
    }
    return out;
  }

  /** The highest index node i's state machine reflects now (0 while down). */
  appliedIndex(i: number): number {
    return this.#node(i).appliedIndex;
  }

  persistedBytes(i: number): number {
    return this.#node(i).persistedBytes();
  }

  /**
   * The leader with the highest term among running nodes, or null when none. A deposed
   * leader of an older term that has not heard of the new one yet is ignored.
   */
  leaderOf(): number | null {
    let best: number | null = null;
    let bestTerm = -1;
    for (const node of this.#nodes) {
      if (!node.isLeader()) continue;
      const term = node.term();
      if (term > bestTerm) {
        best = node.index;
        bestTerm = term;
      } else if (term === bestTerm) {
        // Election safety makes this unreachable; the checker has already thrown.
        throw new Error(`two leaders in term ${term}`);
      }
    }
    return best;
  }

  /**
   * The membership the current leader (leaderOf()) has applied, as node indexes; null
   * when no node leads. Membership changes take effect when applied, so this is the
   * membership the leader counts quorums with.
   */
  members(): Members | null {
    const leader = this.leaderOf();
    return leader === null ? null : this.membersOf(leader);
  }

  /** The membership node i has applied (its own view, maybe stale), or null while it is down. */
  membersOf(i: number): Members | null {
    const conf = this.#node(i).confState();
    return conf === null ? null : this.#indexes(conf);
  }

  /** Whether node i is a voter or learner of the leader's membership (false when no node leads). */
  isMember(i: number): boolean {
    const members = this.members();
    return members !== null && (members.voters.includes(i) || members.learners.includes(i));
  }

  /** How the current leader sees node i's replication (match, next, state), or null (no leader, not a member). */
  progressOf(i: number): ProgressStatus | null {
    const leader = this.leaderOf();
    if (leader === null) return null;
    return this.#node(leader).status()?.progress?.get(this.nodeId(i)) ?? null;
  }

  /** Whether node i's state machine reflects `index` (applied directly or inside a snapshot). */
  hasApplied(i: number, index: number): boolean {
    const node = this.#node(i);
    return node.appliedEntry(index) !== undefined || node.appliedMax >= index;
  }

  /**
   * How many nodes have applied `index` (directly, or inside a snapshot covering it), and
   * the command there (null for a no-op or a membership entry, or when nobody applied it).
   */
  nCommitted(index: number): { count: number; command: KvCommand | null } {
    let count = 0;
    let record: AppliedRecord | undefined;
    for (const node of this.#nodes) {
      const own = node.appliedEntry(index);
      if (own !== undefined) {
        record ??= own;
        count++;
      } else if (node.appliedMax >= index) {
        count++;
      }
    }
    return { count, command: record?.command ?? null };
  }

  /**
   * MIT 6.824's cfg.one: submit `input` through whichever node accepts it as leader, and
   * wait until `expectedServers` nodes applied it at the returned index; retry through
   * other leaders (with the same request id, so it takes effect once) until `timeoutMs`.
   * With `'members'`, wait until every current member (voters and learners of the
   * leader's membership, as it is at each check) applied it.
   * Acknowledges the write to the checkers and returns its index; throws on timeout.
   */
  one(
    input: KvCommandInput,
    expectedServers: number | 'members',
    options: { timeoutMs?: number; retry?: boolean } = {},
  ): number {
    const command = this.command(input);
    const deadlineMs = this.#nowMs + (options.timeoutMs ?? clusterDefaults.oneTimeoutMs);
    const retry = options.retry ?? true;
    let start = 0;
    while (this.#nowMs < deadlineMs) {
      let index = -1;
      for (let k = 0; k < this.#nodes.length; k++) {
        start = (start + 1) % this.#nodes.length;
        if (!this.isAlive(start) || !this.isConnected(start)) continue;
        const result = this.propose(start, command);
        if (result.isLeader) {
          index = result.index;
          break;
        }
      }
      if (index !== -1) {
        const attemptMs = Math.min(clusterDefaults.oneAttemptTimeoutMs, deadlineMs - this.#nowMs);
        let replaced = false;
        const agreed = this.runUntil(
          () => {
            const { count, command: there } = this.nCommitted(index);
            if (count === 0) return false;
            if (there === null || !sameRequest(there.requestId, command.requestId)) {
              replaced = true;
              return true;
            }
            return expectedServers === 'members' ? this.#membersApplied(index) : count >= expectedServers;
          },
          { timeoutMs: Math.max(0, attemptMs) },
        );
        if (agreed && !replaced) {
          this.acknowledgeWrite(index);
          return index;
        }
        if (!retry) throw new Error(`one(${JSON.stringify(command)}) failed to reach agreement`);
      } else {
        this.advance(Math.min(clusterDefaults.oneRetryPauseMs, Math.max(0, deadlineMs - this.#nowMs)));
      }
    }
    throw new Error(
      `one(${JSON.stringify(command)}): no agreement on ${expectedServers === 'members' ? 'every member' : `${expectedServers} nodes`} within the timeout (seed ${this.seed})`,
    );
  }

  stats(): ClusterStats {
    const s = this.network.stats();
    return {
      messagesSent: s.messagesSent,
      bytesSent: s.bytesSent,
      messagesDelivered: s.messagesDelivered,
      bytesDelivered: s.bytesDelivered,
      messagesDropped: s.messagesDropped,
      messagesDuplicated: s.messagesDuplicated,
      eventsProcessed: this.#eventsProcessed,
      nowMs: this.#nowMs,
    };
  }

  /**
   * Run the whole-run sweep of the safety checkers (the incremental ones run on every
   * event), and compare the state machines of nodes that applied the same prefix.
   */
  checkAll(): void {
    const views: AppliedView[] = this.#nodes.map((node) => ({
      node: node.index,
      appliedEntry: (index: number) => node.appliedEntry(index),
    }));
    const leaders = this.#nodes
      .filter((node) => node.isLeader())
      .map((node) => ({ node: node.index, term: node.term(), log: node.logView() }));
    this.#checkers.checkAll({ nodes: views, leaders });
    const replicas: { node: number; appliedIndex: number; state: Uint8Array }[] = [];
    for (const node of this.#nodes) {
      const state = node.stateSnapshot();
      if (state !== null) replicas.push({ node: node.index, appliedIndex: node.appliedIndex, state });
    }
    this.#checkers.checkReplicaStates(replicas);
  }

  get checkers(): SafetyCheckers {
    return this.#checkers;
  }

  traceHash(): string {
    return this.#trace.hash();
  }

  traceLines(): readonly string[] {
    return this.#trace.lines();
  }

  /** Add a line of the script's own to the trace (it counts towards the hash). */
  note(summary: string): void {
    this.#trace.record({ timeMs: this.#nowMs, node: null, kind: 'note', summary });
  }

  // ---- Internals.

  #step(): void {
    const item = this.#queue.pop();
    if (item === undefined) return;
    if (item.atMs < this.#nowMs)
      throw new Error(`event at ${item.atMs} scheduled in the past of ${this.#nowMs}`);
    this.#nowMs = item.atMs;
    this.#eventsProcessed++;
    const event = item.event;
    switch (event.kind) {
      case 'tick':
      case 'fsync': {
        const node = this.#node(event.node);
        if (!node.alive || node.life !== event.life) return;
        if (event.kind === 'tick')
          this.#trace.record({ timeMs: this.#nowMs, node: event.node, kind: 'tick', summary: '' });
        node.onEvent(event);
        return;
      }
      case 'deliver': {
        const { delivery } = event;
        const arrived = this.network.arrive(delivery);
        this.#trace.record({
          timeMs: this.#nowMs,
          node: delivery.to,
          kind: arrived ? 'deliver' : 'lost',
          summary: summarizeMessage(delivery.message),
        });
        if (arrived) this.#node(delivery.to).receive(delivery.message);
        return;
      }
      case 'action':
        this.#trace.record({ timeMs: this.#nowMs, node: null, kind: 'action', summary: event.label });
        event.run();
        return;
    }
  }

  #fault(summary: string, apply: () => void): void {
    this.#trace.record({ timeMs: this.#nowMs, node: null, kind: 'fault', summary });
    apply();
  }

  #conditions(): NetworkConditions {
    const base = this.#unreliable ? unreliableConditions : reliableConditions;
    return this.#longReordering ? { ...base, ...longReorderingConditions } : base;
  }

  #membersApplied(index: number): boolean {
    const members = this.members();
    if (members === null) return false;
    // A node that refused to start (a damaged disk) cannot apply anything: liveness does not wait for it.
    return [...members.voters, ...members.learners].every(
      (i) => this.#node(i).refused !== null || this.hasApplied(i, index),
    );
  }

  #indexes(conf: ConfState): Members {
    const index = (ids: readonly NodeId[]): number[] => {
      const out: number[] = [];
      for (const id of ids) {
        const i = this.#indexById.get(id);
        if (i !== undefined) out.push(i);
      }
      return out;
    };
    return { voters: index(conf.voters), learners: index(conf.learners) };
  }

  #node(i: number): SimNode {
    const node = this.#nodes[i];
    if (node === undefined) throw new RangeError(`no node ${i} in a cluster of ${this.#nodes.length}`);
    return node;
  }

  #environment(): ConstructorParameters<typeof SimNode>[0]['env'] {
    return {
      nowMs: () => this.#nowMs,
      schedule: ({ atMs, event }) => {
        this.#queue.push({ atMs, event });
      },
      send: ({ from, message }) => {
        const to = this.#indexById.get(message.to);
        if (to === undefined) throw new Error(`n${from} sent to unknown node ${message.to}`);
        const result = this.network.send({ from, to, message, nowMs: this.#nowMs });
        if (result.dropped !== null) {
          this.#trace.record({
            timeMs: this.#nowMs,
            node: from,
            kind: `drop.${result.dropped}`,
            summary: summarizeMessage(message),
          });
        }
        for (const delivery of result.deliveries)
          this.#queue.push({ atMs: delivery.atMs, event: { kind: 'deliver', delivery } });
      },
      trace: ({ node, kind, summary }) => {
        this.#trace.record({ timeMs: this.#nowMs, node, kind, summary });
      },
      onWriteBegun: ({ node, write }) => {
        if (!this.#crashOnWrite.delete(node)) return;
        if (this.storage === 'wal') {
          // The power fails inside this write's fdatasync (see tearWrite), unless cancelled.
          this.#crashScheduled.add(node);
          return;
        }
        // Strictly before the fsync event, which is already queued at syncAtMs.
        const atMs = Math.max(this.#nowMs, write.syncAtMs - 1);
        this.#crashScheduled.add(node);
        this.#queue.push({
          atMs,
          event: {
            kind: 'action',
            label: `torn-write crash n${node}`,
            // Cancelled in the meantime (the liveness phase began): the write completes.
            run: () => {
              if (this.#crashScheduled.delete(node)) this.crash(node);
            },
          },
        });
      },
      tearWrite: ({ node }) => {
        if (this.storage !== 'wal' || !this.#crashScheduled.delete(node)) return false;
        this.#trace.record({
          timeMs: this.#nowMs,
          node,
          kind: 'fault',
          summary: `torn-write crash n${node}`,
        });
        return true;
      },
      checkers: this.#checkers,
      onApply: (event) => {
        for (const listener of this.#applyListeners) listener(event);
      },
      onRead: (event) => {
        for (const listener of this.#readListeners) listener({ ...event, ok: true });
      },
      onReadFailed: ({ node, request, errorCode }) => {
        for (const listener of this.#readListeners) {
          listener({ node, request, ok: false, index: -1, value: null, errorCode });
        }
      },
    };
  }
}

/** Whether `members` shows `change` in effect. */
export function membershipShows(members: Members, change: MembershipChange): boolean {
  const { node } = change;
  switch (change.type) {
    case 'addVoter':
      return members.voters.includes(node);
    case 'addLearner':
      return members.learners.includes(node);
    case 'removeNode':
      return !members.voters.includes(node) && !members.learners.includes(node);
  }
}
