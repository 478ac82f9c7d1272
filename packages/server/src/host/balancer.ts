import type { NodeId } from '@conclave/raft';
import type { GroupId } from './ports.js';

/** How a group's leader sees one member (a subset of the core's ProgressStatus). */
export interface MemberProgress {
  readonly match: number;
  /** Ticks since the leader last heard from it; null if it has not in this term. */
  readonly sinceHeardTicks: number | null;
}

/** A group's leader's view of its members: what decides who may take the leadership over. */
export interface LeaderView {
  readonly lastIndex: number;
  readonly progress: ReadonlyMap<NodeId, MemberProgress>;
}

export interface GroupLeadership {
  readonly groupId: GroupId;
  readonly leaderId: NodeId | null;
  readonly voters: readonly NodeId[];
  /**
   * The leader's view, on the server that leads the group; null elsewhere. A server only
   * moves the leaderships it holds, so it only needs this for those.
   */
  readonly leaderView: LeaderView | null;
}

/** What makes a voter a target a leadership can be handed to. */
export interface TransferTargetLimits {
  /**
   * Heard from less than this many ticks ago. A transfer to a server that is down only times
   * out, after holding the group's writes for an election timeout (TRANSFER_IN_PROGRESS).
   */
  readonly heardWithinTicks: number;
  /**
   * At most this many entries behind the leader's last index. The core catches a target up
   * before handing over, and a transfer not done within an election timeout is abandoned.
   */
  readonly trailingEntriesMax: number;
}

/**
 * Behind by at most this many entries, a follower catches up with one AppendEntries
 * (messageEntriesMax is 4096), well within the election timeout a transfer has to finish.
 */
export const transferTargetTrailingEntriesMax = 256;

/** Whether `id` may take the group's leadership over now, as its leader sees it. */
export function isTransferTarget(options: {
  id: NodeId;
  view: LeaderView;
  limits: TransferTargetLimits;
}): boolean {
  const { id, view, limits } = options;
  const progress = view.progress.get(id);
  return (
    progress !== undefined &&
    progress.sinceHeardTicks !== null &&
    progress.sinceHeardTicks < limits.heardWithinTicks &&
    view.lastIndex - progress.match <= limits.trailingEntriesMax
  );
}

/**
 * Which group this server should hand to whom, so that leaders spread evenly. A server
 * leading more than its fair share (ceil(groups / voters)) gives one group to the voter
 * leading the fewest; one move per call keeps the cluster from thrashing, and ties break
 * by id so every run decides the same way. Only voters the group's leader heard from
 * recently and that are caught up are candidates: handing a group to a server that is down
 * would stall its writes until the transfer times out, and then again at the next round.
 */
export function planLeaderTransfer(options: {
  self: NodeId;
  groups: readonly GroupLeadership[];
  limits: TransferTargetLimits;
}): { groupId: GroupId; to: NodeId } | null {
  const { self, groups, limits } = options;
  const led = groups.filter((g) => g.leaderId === self);
  if (led.length === 0) return null;
  const servers = [...new Set(groups.flatMap((g) => g.voters))].sort();
  const fairShare = Math.ceil(groups.length / Math.max(1, servers.length));
  if (led.length <= fairShare) return null;
  const counts = new Map<NodeId, number>(servers.map((id) => [id, 0]));
  for (const g of groups) if (g.leaderId !== null) counts.set(g.leaderId, (counts.get(g.leaderId) ?? 0) + 1);
  for (const group of led) {
    const view = group.leaderView;
    if (view === null) continue;
    const candidates = group.voters
      .filter((id) => id !== self && isTransferTarget({ id, view, limits }))
      .sort((a, b) => (counts.get(a) ?? 0) - (counts.get(b) ?? 0) || a.localeCompare(b));
    const to = candidates[0];
    // Moving only helps if the target would still lead fewer than we do after the move.
    if (to !== undefined && (counts.get(to) ?? 0) + 1 < led.length) return { groupId: group.groupId, to };
  }
  return null;
}
