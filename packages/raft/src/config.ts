import { RaftError, RaftErrorCode } from './errors.js';
import type { Prng } from './prng.js';
import type { NodeId } from './types.js';

/** Every limit the core enforces, each with its unit last. */
export interface RaftLimits {
  /** A follower that hears nothing for a random time in [T, 2T) ticks campaigns. */
  readonly electionTimeoutTicks: number;
  /** The leader sends a heartbeat round every this many ticks. */
  readonly heartbeatIntervalTicks: number;
  /** The most entries carried by one AppendEntries message. */
  readonly messageEntriesMax: number;
  /** The most entry bytes in one AppendEntries message, and the size of a snapshot chunk. */
  readonly messageBytesMax: number;
  /** The most AppendEntries messages in flight to one follower. */
  readonly inflightMessagesMax: number;
  /** The most bytes of uncommitted entries a leader accepts before refusing proposals. */
  readonly uncommittedBytesMax: number;
  /** The largest single proposal, in bytes of command data. */
  readonly proposalBytesMax: number;
  /** The most bytes of committed entries handed out for apply in one Ready. */
  readonly applyBytesMax: number;
  /** The most ReadIndex requests waiting at once. */
  readonly readIndexPendingMax: number;
  /**
   * The lease is `electionTimeoutTicks - leaseClockDriftTicks` ticks from the start of a
   * heartbeat round a quorum acknowledged: a bound on how much faster a follower's clock
   * may run than the leader's over one election timeout.
   */
  readonly leaseClockDriftTicks: number;
  /** The largest snapshot a follower will assemble from chunks. */
  readonly snapshotBytesMax: number;
}

export interface RaftConfig extends RaftLimits {
  readonly id: NodeId;
  readonly prng: Prng;
  /** Campaign first with a PreVote round that changes no term (Raft thesis §9.6). */
  readonly preVote: boolean;
  /** A leader steps down if it has not heard from a quorum within an election timeout. */
  readonly checkQuorum: boolean;
  /** The index the state machine has applied on start: at least the snapshot index. */
  readonly applied: number;
}

export const defaultLimits: RaftLimits = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  messageEntriesMax: 4096,
  messageBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  uncommittedBytesMax: 64 * 1024 * 1024,
  proposalBytesMax: 1024 * 1024,
  applyBytesMax: 64 * 1024 * 1024,
  readIndexPendingMax: 8192,
  leaseClockDriftTicks: 2,
  snapshotBytesMax: 512 * 1024 * 1024,
};

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'prng'> & Partial<Omit<RaftConfig, 'id' | 'prng'>>;

export function resolveConfig(input: RaftConfigInput): RaftConfig {
  const config: RaftConfig = {
    ...defaultLimits,
    preVote: true,
    checkQuorum: true,
    applied: 0,
    ...input,
  };
  validateConfig(config);
  return config;
}

function validateConfig(config: RaftConfig): void {
  const fail = (message: string): never => {
    throw new RaftError({ code: RaftErrorCode.ConfigInvalid, message: `invalid Raft config: ${message}` });
  };
  if (config.id.length === 0) fail('id must be a non-empty string');
  const positive: (keyof RaftLimits)[] = [
    'electionTimeoutTicks',
    'heartbeatIntervalTicks',
    'messageEntriesMax',
    'messageBytesMax',
    'inflightMessagesMax',
    'uncommittedBytesMax',
    'proposalBytesMax',
    'applyBytesMax',
    'readIndexPendingMax',
    'snapshotBytesMax',
  ];
  for (const key of positive) {
    const value = config[key];
    if (!Number.isSafeInteger(value) || value <= 0) fail(`${key} must be a positive integer, got ${value}`);
  }
  if (config.heartbeatIntervalTicks >= config.electionTimeoutTicks) {
    fail('heartbeatIntervalTicks must be less than electionTimeoutTicks');
  }
  if (
    !Number.isSafeInteger(config.leaseClockDriftTicks) ||
    config.leaseClockDriftTicks < 0 ||
    config.leaseClockDriftTicks >= config.electionTimeoutTicks
  ) {
    fail('leaseClockDriftTicks must be an integer in [0, electionTimeoutTicks)');
  }
  if (config.proposalBytesMax > config.uncommittedBytesMax) {
    fail('proposalBytesMax must not exceed uncommittedBytesMax');
  }
  if (!Number.isSafeInteger(config.applied) || config.applied < 0)
    fail('applied must be a non-negative integer');
}
