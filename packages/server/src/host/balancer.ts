import type { NodeId } from '@conclave/raft';
import type { GroupId } from './ports.js';

export interface GroupLeadership {
  readonly groupId: GroupId;
  readonly leaderId: NodeId | null;
  readonly voters: readonly NodeId[];
}

/**
 * Which group this server should hand to whom, so that leaders spread evenly. A server
 * leading more than its fair share (ceil(groups / voters)) gives one group to the voter
 * leading the fewest; one move per call keeps the cluster from thrashing, and ties break
 * by id so every run decides the same way.
 */
export function planLeaderTransfer(options: {
  self: NodeId;
  groups: readonly GroupLeadership[];
}): { groupId: GroupId; to: NodeId } | null {
  const { self, groups } = options;
  const led = groups.filter((g) => g.leaderId === self);
  if (led.length === 0) return null;
  const servers = [...new Set(groups.flatMap((g) => g.voters))].sort();
  const fairShare = Math.ceil(groups.length / Math.max(1, servers.length));
  if (led.length <= fairShare) return null;
  const counts = new Map<NodeId, number>(servers.map((id) => [id, 0]));
  for (const g of groups) if (g.leaderId !== null) counts.set(g.leaderId, (counts.get(g.leaderId) ?? 0) + 1);
  for (const group of led) {
    const candidates = group.voters
      .filter((id) => id !== self)
      .sort((a, b) => (counts.get(a) ?? 0) - (counts.get(b) ?? 0) || a.localeCompare(b));
    const to = candidates[0];
    // Moving only helps if the target would still lead fewer than we do after the move.
    if (to !== undefined && (counts.get(to) ?? 0) + 1 < led.length) return { groupId: group.groupId, to };
  }
  return null;
}
