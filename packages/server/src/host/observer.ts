import type { ConfChange, NodeId } from '@conclave/raft';
import type { GroupId } from './ports.js';

/** A snapshot this server took of its state machine, or installed from its leader. */
export interface SnapshotEvent {
  readonly index: number;
  readonly term: number;
  readonly bytes: number;
  /** Time spent on it: encoding (summed over its steps) and saving, or restoring. */
  readonly seconds: number;
}

/**
 * What one group reports about itself, bound to the group so that the per-proposal calls
 * take a single number: the hot path allocates nothing to report (no event object per
 * proposal), and no two arguments can be swapped.
 */
export interface GroupObserver {
  /** A proposal of this server applied, `seconds` after propose() accepted it. */
  proposalApplied(seconds: number): void;
  /** A proposal failed with this catalogue code (refused at once, replaced, or timed out). */
  proposalRefused(code: string): void;
  /** One Ready's committed entries (and snapshot, if any) were applied in `seconds`. */
  batchApplied(seconds: number): void;
  /** This server learned of a new leader, or of its leader's new term (commit index then). */
  leaderChanged(event: {
    term: number;
    commitIndex: number;
    leaderId: NodeId;
    previousLeaderId: NodeId | null;
  }): void;
  confChangeApplied(event: { index: number; term: number; change: ConfChange }): void;
  snapshotTaken(event: SnapshotEvent): void;
  snapshotInstalled(event: SnapshotEvent): void;
}

/** What the host loop reports: metrics and event logs live outside the host (metrics/). */
export interface HostObserver {
  group(groupId: GroupId): GroupObserver;
  /** One durable write of a turn, with or without its fdatasync, took `seconds`. */
  persisted(sync: boolean, seconds: number): void;
}

const noop = (): void => {};

export const noopGroupObserver: GroupObserver = {
  proposalApplied: noop,
  proposalRefused: noop,
  batchApplied: noop,
  leaderChanged: noop,
  confChangeApplied: noop,
  snapshotTaken: noop,
  snapshotInstalled: noop,
};

export const noopHostObserver: HostObserver = { group: () => noopGroupObserver, persisted: noop };
