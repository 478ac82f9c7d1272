/**
 * The vocabulary of the Raft core: entries, persistent state, snapshots and messages.
 * Everything here is plain data so that it can be encoded by any codec and compared
 * byte for byte in the simulator.
 */

/** A server's identity within one Raft group. Stable across restarts. */
export type NodeId = string;

export const EntryType = {
  /** An application command, or the empty no-op a new leader appends. */
  Normal: 0,
  /** A membership change; its data is an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The state that must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  /** The candidate this node voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** The membership of a group: voters form quorums, learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export const ConfChangeType = {
  /** Add a voter, or promote a learner to voter. */
  AddVoter: 'addVoter',
  /** Add a learner, or demote a voter to learner. */
  AddLearner: 'addLearner',
  RemoveNode: 'removeNode',
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** One single-server membership change (see docs/architecture.md for why single-server). */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /**
   * Opaque bytes replicated with the change and handed back when it is applied (for
   * instance the new server's addresses), at most `confChangeContextBytesMax`. The core
   * never reads them.
   */
  readonly context?: Uint8Array;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export const Role = {
  Follower: 'follower',
  PreCandidate: 'preCandidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Volatile state a caller may want to observe; never persisted. */
export interface SoftState {
  readonly leaderId: NodeId | null;
  readonly role: Role;
}

/** A read that may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries: `index`/`logTerm` name the entry that precedes `entries`. */
export interface AppendMessage extends MessageBase {
  readonly type: 'app';
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to AppendEntries (and to a finished snapshot install).
 * On success `index` is the last index now known to match the leader.
 * On reject, `index` echoes the rejected `index`, and `hintIndex`/`hintTerm` name the
 * largest entry of the follower at or below it whose term is at most the leader's
 * `logTerm`, so the leader can skip a whole divergent term in one round trip.
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: 'appResp';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** RequestVote or PreVote. `index`/`logTerm` describe the candidate's last entry. */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly index: number;
  readonly logTerm: number;
  /** Set when the campaign follows a leadership transfer: voters then ignore their lease. */
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends MessageBase {
  readonly type: 'voteResp' | 'preVoteResp';
  readonly reject: boolean;
}

/**
 * A heartbeat. `round` is the leader's heartbeat round; followers echo it so that
 * ReadIndex and the leader lease can count a quorum of acknowledgements per round.
 */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly round: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly round: number;
}

/** One chunk of an InstallSnapshot. `done` marks the last chunk. */
export interface SnapshotMessage extends MessageBase {
  readonly type: 'snap';
  readonly metadata: SnapshotMetadata;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}

/** Acknowledges snapshot chunks: the follower holds `offset` bytes of snapshot `index`. */
export interface SnapshotResponseMessage extends MessageBase {
  readonly type: 'snapResp';
  readonly index: number;
  readonly offset: number;
}

/** Tells the transfer target to campaign at once. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage
  | TimeoutNowMessage;

export type MessageType = Message['type'];

/**
 * The work a caller must do, in this order:
 * 1. persist `snapshot`, then `entries`, then `hardState` (one durable write, fsynced when `mustSync`);
 * 2. send `messagesAfterPersist` (and `messages`, which may go out earlier);
 * 3. restore the state machine from `snapshot` if present, then apply `committedEntries`;
 * 4. hand out `readStates` once the state machine has applied their index;
 * 5. call `advance()`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  /** Messages that depend on nothing in this Ready being durable: send them at once. */
  readonly messages: readonly Message[];
  /** Messages that may leave only after this Ready's state is durable. */
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** True when `hardState` or `entries` must reach stable storage with an fsync. */
  readonly mustSync: boolean;
}
