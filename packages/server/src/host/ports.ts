import type { Entry, HardState, LogStorage, Message, NodeId, Snapshot } from '@conclave/raft';

/** Raft groups are numbered from 0 within a cluster. */
export type GroupId = number;

/** One Raft message, addressed to one group. */
export interface Envelope {
  readonly groupId: GroupId;
  readonly message: Message;
}

/** What one group's Ready asks to make durable. */
export interface GroupWrite {
  readonly groupId: GroupId;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
}

/**
 * The host's view of durable storage: one log shared by every group, so a turn of the
 * loop makes all groups' writes durable with one write and one fsync (group commit).
 */
export interface DurableLog {
  /** The recovered log of a group, read synchronously by its Raft core. */
  storage(groupId: GroupId): LogStorage;
  /**
   * Make every write durable before returning. Throws if the disk fails; never retried.
   * With `sync: false` the writes need not be durable yet (see MultiRaftHost: only commit
   * index changes are written so); a later synced persist covers them.
   */
  persist(writes: readonly GroupWrite[], options?: { sync: boolean }): void;
  /**
   * Optional: a synced persist whose slow parts (an installed snapshot's file, the
   * fdatasync) run off the event loop. The promise resolves once the writes are durable and
   * `storage()` shows them, and rejects if the disk fails. The Raft cores keep these writes
   * as unstable until then, so they never read them from `storage()` meanwhile. The host
   * has at most one in flight.
   */
  persistAsync?(writes: readonly GroupWrite[]): Promise<void>;
  /**
   * Store a snapshot the state machine took, then drop log entries up to `compactIndex`.
   * Either at once (void), or in the background: the promise resolves true once stored and
   * compacted, false if abandoned (storage closed, or a newer snapshot installed meanwhile).
   */
  saveSnapshot(options: {
    groupId: GroupId;
    snapshot: Snapshot;
    compactIndex: number;
    // biome-ignore lint/suspicious/noConfusingVoidType: synchronous logs (in-memory, tests) declare void
  }): void | Promise<boolean>;
}

/** The host's view of the network: batches of envelopes per peer server. */
export interface PeerTransport {
  send(to: NodeId, envelopes: readonly Envelope[]): void;
  /** Put what was sent on the wire now, before the host blocks on its fsync. */
  flush?(): void;
}

/** A group's replicated application. Apply is deterministic and takes nothing from the clock. */
export interface StateMachine<Result = unknown> {
  apply(entry: Entry): Result;
  snapshot(): Uint8Array;
  /**
   * Optional: the same bytes as snapshot(), encoded one bounded step per `next()` from the
   * state at the call, so a large state never holds the event loop (heartbeats go on).
   */
  snapshotSteps?(): Iterator<void, Uint8Array, void>;
  restore(data: Uint8Array): void;
}
