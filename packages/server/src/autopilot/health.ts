import type { GroupId } from '../host/ports.js';
import type { GroupStatus } from '../service/status.js';
import type { AutopilotSettings } from './config.js';

/**
 * Autopilot's health maths, pure. A server is healthy in a group when the group's leader
 * knows it, heard from it recently, and it trails by at most `maxTrailingLogs` entries, and
 * when the server itself answers, in the leader's term, having heard from the leader within
 * `lastContactThresholdMs`. A server that cannot be asked is unhealthy.
 */

/** What one group looks like: its leader's view and each member's own view (null: not reachable). */
export interface GroupObservation {
  readonly groupId: GroupId;
  /** The leader's status of the group; null when the group has no reachable leader. */
  readonly leader: GroupStatus | null;
  readonly ownViews: ReadonlyMap<string, GroupStatus | null>;
}

export interface MemberHealth {
  readonly id: string;
  readonly voter: boolean;
  readonly leader: boolean;
  readonly healthy: boolean;
  /** Why it is not healthy; null when it is. */
  readonly reason: string | null;
  /** From the member's own view: ms since it heard from the leader, its term and last index. */
  readonly lastContactMs: number | null;
  readonly term: number | null;
  readonly lastIndex: number | null;
  readonly trailingEntries: number | null;
}

export interface GroupHealth {
  readonly groupId: GroupId;
  readonly leaderId: string | null;
  readonly healthy: boolean;
  readonly voters: number;
  readonly healthyVoters: number;
  /** Voters that may fail with the group keeping a healthy majority. */
  readonly failureTolerance: number;
  readonly members: readonly MemberHealth[];
}

/** The smallest majority of `voters`. */
export function quorumOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** Healthy voters beyond a quorum; never negative (a group below quorum tolerates nothing). */
export function failureTolerance(options: { voters: number; healthyVoters: number }): number {
  if (options.voters === 0) return 0;
  return Math.max(0, options.healthyVoters - quorumOf(options.voters));
}

export function groupHealth(observation: GroupObservation, settings: AutopilotSettings): GroupHealth {
  const { leader } = observation;
  if (leader === null) {
    return {
      groupId: observation.groupId,
      leaderId: null,
      healthy: false,
      voters: 0,
      healthyVoters: 0,
      failureTolerance: 0,
      members: [...observation.ownViews.entries()].map(([id, own]) =>
        unhealthy({
          id,
          voter: true,
          leader: false,
          own,
          trailingEntries: null,
          reason: 'the group has no leader',
        }),
      ),
    };
  }
  const members = leader.members.map((member): MemberHealth => {
    const own = observation.ownViews.get(member.id) ?? null;
    const base = { id: member.id, voter: member.voter, leader: member.leader, own };
    const trailingEntries = member.trailingEntries;
    const reason = unhealthyReason({ member, own, leader, settings });
    return reason === null
      ? healthy({ ...base, trailingEntries })
      : unhealthy({ ...base, trailingEntries, reason });
  });
  const voters = members.filter((m) => m.voter);
  const healthyVoters = voters.filter((m) => m.healthy).length;
  return {
    groupId: observation.groupId,
    leaderId: leader.leaderId,
    healthy: members.every((m) => m.healthy),
    voters: voters.length,
    healthyVoters,
    failureTolerance: failureTolerance({ voters: voters.length, healthyVoters }),
    members,
  };
}

function unhealthyReason(options: {
  member: GroupStatus['members'][number];
  own: GroupStatus | null;
  leader: GroupStatus;
  settings: AutopilotSettings;
}): string | null {
  const { member, own, leader, settings } = options;
  if (member.recentActive !== true) return 'the leader has not heard from it recently';
  if ((member.trailingEntries ?? Number.POSITIVE_INFINITY) > settings.maxTrailingLogs)
    return `it trails the leader by ${member.trailingEntries ?? 'an unknown number of'} entries (max ${settings.maxTrailingLogs})`;
  if (own === null) return 'it could not be asked for its own status';
  if (own.term !== leader.term) return `it is in term ${own.term}, the leader in ${leader.term}`;
  if (own.lastContactMs > settings.lastContactThresholdMs)
    return `it last heard from the leader ${own.lastContactMs} ms ago (max ${settings.lastContactThresholdMs})`;
  return null;
}

type MemberBase = {
  id: string;
  voter: boolean;
  leader: boolean;
  own: GroupStatus | null;
  trailingEntries: number | null;
};

function healthy(options: MemberBase): MemberHealth {
  return { ...memberFields(options), healthy: true, reason: null };
}

function unhealthy(options: MemberBase & { reason: string }): MemberHealth {
  return { ...memberFields(options), healthy: false, reason: options.reason };
}

function memberFields(options: MemberBase) {
  const { own } = options;
  return {
    id: options.id,
    voter: options.voter,
    leader: options.leader,
    lastContactMs: own?.lastContactMs ?? null,
    term: own?.term ?? null,
    lastIndex: own?.lastIndex ?? null,
    trailingEntries: options.trailingEntries,
  };
}

/** One server across every group it belongs to. */
export interface ServerHealth {
  readonly id: string;
  readonly healthy: boolean;
  /** Leads at least one group. */
  readonly leader: boolean;
  /** A voter of at least one group. */
  readonly voter: boolean;
  /** The longest, over its groups, since it heard from a leader (ms); null when it could not be asked. */
  readonly lastContactMs: number | null;
  /** Group 0's term and last index as the server sees them (group 0 holds cluster metadata). */
  readonly lastTerm: number | null;
  readonly lastIndex: number | null;
  readonly unhealthyGroups: readonly GroupId[];
}

export interface ClusterHealth {
  readonly healthy: boolean;
  /** The smallest failure tolerance of any group: what the cluster as a whole survives. */
  readonly failureTolerance: number;
  readonly servers: readonly ServerHealth[];
  readonly groups: readonly GroupHealth[];
}

export function clusterHealth(groups: readonly GroupHealth[]): ClusterHealth {
  const byServer = new Map<string, { groupId: GroupId; member: MemberHealth }[]>();
  for (const group of groups) {
    for (const member of group.members) {
      const list = byServer.get(member.id) ?? [];
      list.push({ groupId: group.groupId, member });
      byServer.set(member.id, list);
    }
  }
  const servers = [...byServer.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, entries]): ServerHealth => {
      const contacts = entries.map((e) => e.member.lastContactMs);
      const group0 = entries.find((e) => e.groupId === 0)?.member ?? entries[0]?.member;
      return {
        id,
        healthy: entries.every((e) => e.member.healthy),
        leader: entries.some((e) => e.member.leader),
        voter: entries.some((e) => e.member.voter),
        lastContactMs: contacts.some((c) => c === null) ? null : Math.max(0, ...(contacts as number[])),
        lastTerm: group0?.term ?? null,
        lastIndex: group0?.lastIndex ?? null,
        unhealthyGroups: entries.filter((e) => !e.member.healthy).map((e) => e.groupId),
      };
    });
  return {
    healthy: groups.length > 0 && groups.every((g) => g.healthy),
    failureTolerance: groups.length === 0 ? 0 : Math.min(...groups.map((g) => g.failureTolerance)),
    servers,
    groups,
  };
}
