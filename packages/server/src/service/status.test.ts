import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { keepsReachableMajority } from './status.js';
import { eventually, startTestCluster, type TestCluster } from './testing/cluster.js';
import { captureLog, type LogLine, logLevels } from './testing/log-lines.js';

const groupCount = 3;
const groups = [...Array(groupCount).keys()];

/** Every server's log lines, of every cluster started here. */
const logged: LogLine[] = [];
const events = (event: string) => logged.filter((line) => line.event === event);

async function startCluster(): Promise<TestCluster> {
  const cluster = await startTestCluster({
    size: 3,
    groupCount,
    logger: () => captureLog('info', logged).logger,
  });
  await eventually(() => groups.every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
  return cluster;
}

const leaderIdOf = (cluster: TestCluster, groupId: number) => cluster.leaderOf(groupId)?.id;
const votersOn = (cluster: TestCluster, id: string, groupId: number) =>
  cluster.server(id).host.group(groupId).raw.status().confState.voters;

describe('keepsReachableMajority', () => {
  const active = (...ids: string[]) =>
    new Map(['a', 'b', 'c'].map((id) => [id, { recentActive: ids.includes(id) }]));
  it('allows removing a dead voter, or any voter while the rest are reachable', () => {
    expect(
      keepsReachableMajority({ nodeId: 'c', voters: ['a', 'b', 'c'], progress: active('a', 'b'), self: 'a' }),
    ).toBe(true);
    expect(
      keepsReachableMajority({
        nodeId: 'b',
        voters: ['a', 'b', 'c'],
        progress: active('a', 'b', 'c'),
        self: 'a',
      }),
    ).toBe(true);
  });
  it('refuses removing a live voter while another is unreachable (1 of 2 left is no majority)', () => {
    expect(
      keepsReachableMajority({ nodeId: 'b', voters: ['a', 'b', 'c'], progress: active('b'), self: 'a' }),
    ).toBe(false);
  });
});

describe('operator service over 3 servers', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster.close();
  });

  it("forwards a group status to the leader; ?stale answers with the asked server's own view", async () => {
    const follower = cluster.followerOf(1);
    const leaderId = leaderIdOf(cluster, 1);
    const status = await follower.runtime.operator.groupStatus({ groupId: 1, stale: false });
    expect(status.nodeId).toBe(leaderId);
    expect(status.role).toBe('leader');
    expect(status.members.map((m) => m.id).sort()).toEqual(['s1', 's2', 's3']);
    for (const member of status.members) {
      expect(member.voter).toBe(true);
      expect(member.matchIndex).not.toBeNull();
      expect(member.trailingEntries).toBe(status.lastIndex - (member.matchIndex ?? 0));
    }
    const stale = await follower.runtime.operator.groupStatus({ groupId: 1, stale: true });
    expect(stale).toMatchObject({ nodeId: follower.id, role: 'follower', leaderId });
    expect(stale.members.every((m) => m.matchIndex === null && m.recentActive === null)).toBe(true);
  });

  it('asks every server for its own view of every group (members)', async () => {
    const members = await cluster.servers[0]?.runtime.operator.members();
    expect(members?.map((m) => [m.id, m.error, m.groups.map((g) => g.nodeId)])).toEqual(
      ['s1', 's2', 's3'].map((id) => [id, null, groups.map(() => id)]),
    );
  });

  it('moves one group to a named voter, asked of a server that does not lead it', async () => {
    const leaderId = leaderIdOf(cluster, 0);
    const target = ['s1', 's2', 's3'].find((id) => id !== leaderId) ?? '';
    const asked = cluster.servers.find((s) => s.id !== leaderId && s.id !== target);
    const outcome = await asked?.runtime.operator.transferLeader({ to: target, groupId: 0 });
    expect(outcome).toEqual([{ groupId: 0, ok: true, from: leaderId, started: true }]);
    await eventually(() => leaderIdOf(cluster, 0) === target, { timeoutMs: 5_000 });
    // The leader that hands over says so, naming group, server, term and reason.
    expect(events('leader_transfer')).toEqual([
      expect.objectContaining({
        level: logLevels.info,
        group: 0,
        server: target,
        from: leaderId,
        term: expect.any(Number),
        reason: 'operator transfer-leader',
      }),
    ]);
  });

  it('moves every group the target votes in when no group is named', async () => {
    const outcome = await cluster.server('s1').runtime.operator.transferLeader({ to: 's3', groupId: null });
    expect(outcome.map((o) => [o.groupId, o.ok])).toEqual(groups.map((g) => [g, true]));
    await eventually(() => groups.every((g) => leaderIdOf(cluster, g) === 's3'), { timeoutMs: 5_000 });
  });
});

describe('remove-peer over 3 servers', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('removes a server from one group only, through any server', async () => {
    const outcome = await cluster.server('s2').runtime.operator.removePeer({ nodeId: 's3', groupId: 1 });
    expect(outcome).toEqual([{ groupId: 1, ok: true, index: expect.any(Number) }]);
    await eventually(() => ['s1', 's2'].every((id) => votersOn(cluster, id, 1).join() === 's1,s2'), {
      timeoutMs: 5_000,
    });
    for (const g of [0, 2]) expect([...votersOn(cluster, 's1', g)].sort()).toEqual(['s1', 's2', 's3']);
    // The group keeps working with the two voters left.
    const status = await cluster.server('s1').runtime.operator.groupStatus({ groupId: 1, stale: false });
    expect(status.members.map((m) => m.id).sort()).toEqual(['s1', 's2']);
    // Its leader logged the removal at warn, naming group, server, term and reason.
    expect(events('server_removing')).toEqual([
      expect.objectContaining({
        level: logLevels.warn,
        group: 1,
        server: 's3',
        term: expect.any(Number),
        index: expect.any(Number),
        reason: 'operator remove-peer',
      }),
    ]);
  });

  it('refuses a server that is not a member of the named group', async () => {
    const removing = cluster.server('s1').runtime.operator.removePeer({ nodeId: 's3', groupId: 1 });
    await expect(removing).rejects.toBeInstanceOf(ConclaveError);
    await expect(removing).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('removes a server from every group it belongs to when no group is named', async () => {
    const outcome = await cluster.server('s1').runtime.operator.removePeer({ nodeId: 's3', groupId: null });
    expect(outcome.map((o) => [o.groupId, o.ok])).toEqual([
      [0, true],
      [2, true],
    ]);
    await eventually(() => groups.every((g) => votersOn(cluster, 's1', g).join() === 's1,s2'), {
      timeoutMs: 5_000,
    });
  });
});
