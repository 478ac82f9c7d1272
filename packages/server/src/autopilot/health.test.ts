import { describe, expect, it } from 'vitest';
import type { GroupStatus, MemberStatus } from '../service/status.js';
import { defaultAutopilotSettings } from './config.js';
import { clusterHealth, failureTolerance, type GroupObservation, groupHealth, quorumOf } from './health.js';

const settings = defaultAutopilotSettings;

function member(id: string, over: Partial<MemberStatus> = {}): MemberStatus {
  return {
    id,
    voter: true,
    leader: id === 'a',
    matchIndex: 100,
    trailingEntries: 0,
    recentActive: true,
    ...over,
  };
}

function status(nodeId: string, over: Partial<GroupStatus> = {}): GroupStatus {
  return {
    groupId: 0,
    nodeId,
    role: nodeId === 'a' ? 'leader' : 'follower',
    term: 3,
    leaderId: 'a',
    commitIndex: 100,
    appliedIndex: 100,
    lastIndex: 100,
    firstIndex: 1,
    lastContactMs: nodeId === 'a' ? 0 : 20,
    snapshotIndex: 0,
    snapshotTimeMs: null,
    members: [],
    ...over,
  };
}

/** A group led by a, with b and c voters, every member answering for itself unless overridden. */
function observation(options: {
  groupId?: number;
  members?: MemberStatus[];
  own?: Record<string, GroupStatus | null>;
}): GroupObservation {
  const members = options.members ?? [member('a'), member('b'), member('c')];
  const own = new Map<string, GroupStatus | null>(members.map((m) => [m.id, status(m.id)]));
  for (const [id, view] of Object.entries(options.own ?? {})) own.set(id, view);
  return { groupId: options.groupId ?? 0, leader: status('a', { members }), ownViews: own };
}

describe('quorum and failure tolerance', () => {
  it('is the healthy voters beyond a majority, never negative', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
    expect(failureTolerance({ voters: 5, healthyVoters: 5 })).toBe(2);
    expect(failureTolerance({ voters: 5, healthyVoters: 4 })).toBe(1);
    expect(failureTolerance({ voters: 3, healthyVoters: 3 })).toBe(1);
    expect(failureTolerance({ voters: 3, healthyVoters: 2 })).toBe(0);
    expect(failureTolerance({ voters: 3, healthyVoters: 1 })).toBe(0);
    expect(failureTolerance({ voters: 4, healthyVoters: 4 })).toBe(1);
    expect(failureTolerance({ voters: 0, healthyVoters: 0 })).toBe(0);
  });
});

describe('groupHealth', () => {
  it('counts every member healthy when active, caught up and recently in contact', () => {
    const health = groupHealth(observation({}), settings);
    expect(health).toMatchObject({
      healthy: true,
      voters: 3,
      healthyVoters: 3,
      failureTolerance: 1,
      leaderId: 'a',
    });
    expect(health.members.map((m) => m.reason)).toEqual([null, null, null]);
  });

  it('marks a member unhealthy for each failed criterion, naming it', () => {
    const cases: { obs: GroupObservation; reason: RegExp }[] = [
      {
        obs: observation({ members: [member('a'), member('b', { recentActive: false }), member('c')] }),
        reason: /not heard/,
      },
      {
        obs: observation({ members: [member('a'), member('b', { trailingEntries: 251 }), member('c')] }),
        reason: /trails the leader by 251/,
      },
      { obs: observation({ own: { b: null } }), reason: /could not be asked/ },
      { obs: observation({ own: { b: status('b', { term: 2 }) } }), reason: /term 2/ },
      { obs: observation({ own: { b: status('b', { lastContactMs: 201 }) } }), reason: /201 ms ago/ },
    ];
    for (const { obs, reason } of cases) {
      const health = groupHealth(obs, settings);
      const b = health.members.find((m) => m.id === 'b');
      expect(b?.healthy).toBe(false);
      expect(b?.reason).toMatch(reason);
      expect(health).toMatchObject({ healthy: false, healthyVoters: 2, failureTolerance: 0 });
    }
  });

  it('takes the limits at their boundary as healthy, and uses the configured ones', () => {
    const edge = observation({
      members: [member('a'), member('b', { trailingEntries: 250 }), member('c')],
      own: { c: status('c', { lastContactMs: 200 }) },
    });
    expect(groupHealth(edge, settings).healthy).toBe(true);
    const strict = { ...settings, maxTrailingLogs: 10, lastContactThresholdMs: 50 };
    expect(
      groupHealth(edge, strict)
        .members.filter((m) => !m.healthy)
        .map((m) => m.id),
    ).toEqual(['b', 'c']);
  });

  it('does not count an unhealthy learner against the voters, but reports the group unhealthy', () => {
    const obs = observation({
      members: [member('a'), member('b'), member('c'), member('d', { voter: false, recentActive: false })],
    });
    const health = groupHealth(obs, settings);
    expect(health).toMatchObject({ healthy: false, voters: 3, healthyVoters: 3, failureTolerance: 1 });
  });

  it('reports a group without a leader unhealthy, tolerating nothing', () => {
    const obs: GroupObservation = {
      groupId: 2,
      leader: null,
      ownViews: new Map([
        ['a', status('a')],
        ['b', null],
      ]),
    };
    const health = groupHealth(obs, settings);
    expect(health).toMatchObject({ groupId: 2, leaderId: null, healthy: false, failureTolerance: 0 });
    expect(health.members.every((m) => !m.healthy && m.reason === 'the group has no leader')).toBe(true);
  });
});

describe('clusterHealth', () => {
  it('takes the smallest tolerance of any group, and a server healthy only in all its groups', () => {
    const g0 = groupHealth(observation({ groupId: 0 }), settings);
    const g1 = groupHealth(
      observation({
        groupId: 1,
        members: [member('a'), member('b'), member('c', { recentActive: false })],
        own: { b: status('b', { lastContactMs: 70, term: 3 }) },
      }),
      settings,
    );
    const health = clusterHealth([g0, g1]);
    expect(health.healthy).toBe(false);
    expect(health.failureTolerance).toBe(0);
    expect(health.servers.map((s) => [s.id, s.healthy, s.unhealthyGroups])).toEqual([
      ['a', true, []],
      ['b', true, []],
      ['c', false, [1]],
    ]);
    const b = health.servers.find((s) => s.id === 'b');
    // The longest silence over its groups; term and index from group 0.
    expect(b).toMatchObject({ lastContactMs: 70, lastTerm: 3, lastIndex: 100, leader: false, voter: true });
    expect(health.servers.find((s) => s.id === 'a')?.leader).toBe(true);
    expect(clusterHealth([g0, g0]).failureTolerance).toBe(1);
  });

  it('reports an unreachable server with no last contact, and no groups as unhealthy', () => {
    const health = clusterHealth([groupHealth(observation({ own: { c: null } }), settings)]);
    expect(health.servers.find((s) => s.id === 'c')).toMatchObject({ healthy: false, lastContactMs: null });
    expect(clusterHealth([])).toMatchObject({ healthy: false, failureTolerance: 0 });
  });
});
