/**
 * `operator raft transfer-leader` naming a server that is down: refused at once with a typed
 * error, through any server, instead of a transfer that holds the group's writes for an
 * election timeout and then fails.
 */
import { defaultLimits } from '@conclave/raft';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestCluster, type TestCluster } from './testing/cluster.js';

const groupCount = 3;
const groups = [...Array(groupCount).keys()];
const live = ['s1', 's2'];

describe('transfer-leader to a server that is down', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster({ size: 3, groupCount });
    await eventually(() => groups.every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
    cluster.net.setDown('s3', true);
    // Every group led by a live server that has gone an election timeout without hearing s3.
    // The host's window for "heard from recently" is the election timeout.
    const window = defaultLimits.electionTimeoutTicks;
    await eventually(
      () =>
        groups.every((g) =>
          live.some((id) => {
            const status = cluster.server(id).host.group(g).raw.status();
            const heard = status.progress?.get('s3')?.sinceHeardTicks;
            return status.role === 'leader' && (heard === null || (heard !== undefined && heard >= window));
          }),
        ),
      { timeoutMs: 10_000 },
    );
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('refuses it in every group with TRANSFER_TARGET_UNAVAILABLE, asked of any live server', async () => {
    for (const id of live) {
      const outcomes = await cluster.server(id).runtime.operator.transferLeader({ to: 's3', groupId: null });
      expect(outcomes.map((o) => [o.groupId, o.ok, o.ok ? null : o.code])).toEqual(
        groups.map((g) => [g, false, 'TRANSFER_TARGET_UNAVAILABLE']),
      );
    }
    for (const g of groups) {
      const asked = cluster
        .server(live[g % 2] ?? 's1')
        .runtime.operator.transferLeader({ to: 's3', groupId: g });
      await expect(asked).rejects.toMatchObject({
        code: 'TRANSFER_TARGET_UNAVAILABLE',
        message: expect.stringMatching(new RegExp(`^s3 has not answered s[12], the leader of group ${g}, `)),
      });
    }
    // Nothing was started: no group's leader is handing over.
    for (const g of groups) {
      const leader = live
        .map((id) => cluster.server(id).host.group(g).raw.status())
        .find((s) => s.role === 'leader');
      expect(leader?.leadTransferee).toBeNull();
    }
  });

  it('still moves a group to a live voter', async () => {
    const leader = cluster.leaderOf(0);
    const target = live.find((id) => id !== leader?.id) ?? '';
    const outcome = await cluster.server('s1').runtime.operator.transferLeader({ to: target, groupId: 0 });
    expect(outcome).toEqual([{ groupId: 0, ok: true, from: leader?.id, started: true }]);
    await eventually(() => cluster.leaderOf(0)?.id === target, { timeoutMs: 5_000 });
  });
});
