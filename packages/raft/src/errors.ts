import type { NodeId } from './types.js';

/**
 * The catalogue of expected failures the core reports. Each code is stable: the server's
 * error table maps it to an HTTP status and a message a person can act on.
 */
export const RaftErrorCode = {
  /** This node is not the leader; `leaderId` names the one it knows, if any. */
  NotLeader: 'NOT_LEADER',
  /** A leadership transfer is under way; retry when it has finished or been aborted. */
  TransferInProgress: 'TRANSFER_IN_PROGRESS',
  /** The leader already holds `uncommittedBytesMax` of uncommitted entries. */
  UncommittedBytesExceeded: 'UNCOMMITTED_BYTES_EXCEEDED',
  /** A single proposal is larger than `proposalBytesMax`. */
  ProposalTooLarge: 'PROPOSAL_TOO_LARGE',
  /** A previous membership change has not been applied yet. */
  ConfChangePending: 'CONF_CHANGE_PENDING',
  /** The membership change is not valid against the current configuration. */
  ConfChangeInvalid: 'CONF_CHANGE_INVALID',
  /** More than `readIndexPendingMax` reads are waiting for their quorum round. */
  ReadIndexQueueFull: 'READ_INDEX_QUEUE_FULL',
  /** The transfer target is not a voter of this group, or is this node. */
  TransferTargetInvalid: 'TRANSFER_TARGET_INVALID',
  /** A snapshot was requested at an index the node cannot describe. */
  SnapshotOutOfDate: 'SNAPSHOT_OUT_OF_DATE',
  /** A configuration value is missing or out of range. */
  ConfigInvalid: 'CONFIG_INVALID',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export class RaftError extends Error {
  override readonly name = 'RaftError';
  readonly code: RaftErrorCode;
  /** For NotLeader: the leader this node knows of, so a caller can redirect. */
  readonly leaderId: NodeId | null;

  constructor(options: { code: RaftErrorCode; message: string; leaderId?: NodeId | null }) {
    super(options.message);
    this.code = options.code;
    this.leaderId = options.leaderId ?? null;
  }
}

/** An invariant of the protocol was broken. Never caught: the process must stop. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === 'string' ? message : message());
  }
}
