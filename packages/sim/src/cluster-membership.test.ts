/** The Cluster's membership API: proposeConfChange, reconfigure, members, wipe and rejoin. */
import { describe, expect, it } from 'vitest';
import { Cluster, type ClusterOptions } from './cluster.js';

function electedCluster(options: ClusterOptions): { c: Cluster; leader: number } {
  const c = Cluster.create(options);
  expect(c.runUntil(() => c.leaderOf() !== null, { timeoutMs: 3_000 })).toBe(true);
  const leader = c.leaderOf();
  if (leader === null) throw new Error('no leader');
  return { c, leader };
}

/** A node other than `leader`, counting from `leader + k`. */
function other(c: Cluster, leader: number, k = 1): number {
  return (leader + k) % c.nodeCount;
}

describe('Cluster membership', () => {
  it("lists the leader's membership and each running node's own", () => {
    const { c, leader } = electedCluster({ seed: 21, nodes: 3 });
    expect(c.members()).toEqual({ voters: [0, 1, 2], learners: [] });
    for (let i = 0; i < 3; i++) {
      expect(c.membersOf(i)).toEqual({ voters: [0, 1, 2], learners: [] });
      expect(c.isMember(i)).toBe(true);
    }
    const follower = other(c, leader);
    c.crash(follower);
    expect(c.membersOf(follower)).toBeNull();
    c.isolate(leader);
    expect(c.runUntil(() => c.leaderOf() !== leader, { timeoutMs: 3_000 })).toBe(true);
    // Two nodes left, one of them down: nobody leads, so no membership is known.
    expect(c.leaderOf()).toBeNull();
    expect(c.members()).toBeNull();
    expect(c.isMember(leader)).toBe(false);
  });

  it('proposes through the leader, one change at a time, and refuses invalid ones', () => {
    const { c, leader } = electedCluster({ seed: 22, nodes: 3 });
    c.one({ op: 'put', key: 'a', value: '1' }, 3);
    const follower = other(c, leader);
    expect(c.proposeConfChange({ type: 'addLearner', node: follower }, { via: follower })).toEqual({
      ok: false,
      errorCode: 'NOT_LEADER',
      via: follower,
    });
    const first = c.proposeConfChange({ type: 'addLearner', node: follower });
    expect(first).toMatchObject({ ok: true, via: leader });
    const second = c.proposeConfChange({ type: 'removeNode', node: other(c, leader, 2) });
    expect(second).toMatchObject({ ok: false, errorCode: 'CONF_CHANGE_PENDING' });
    expect(c.runUntil(() => c.members()?.learners.includes(follower) ?? false, { timeoutMs: 1_000 })).toBe(
      true,
    );
    expect(c.proposeConfChange({ type: 'addLearner', node: follower })).toMatchObject({
      ok: false,
      errorCode: 'CONF_CHANGE_INVALID',
    });
    // Every member applies it at the same index.
    c.one({ op: 'put', key: 'a', value: '2' }, 3);
    for (let i = 0; i < 3; i++) expect(c.membersOf(i)?.learners).toEqual([follower]);
    c.reconfigure({ type: 'addVoter', node: follower });
    expect(c.members()?.voters).toContain(follower);
    expect(() => c.reconfigure({ type: 'addVoter', node: follower })).not.toThrow();
    c.checkAll();
  });

  it('removes a voter, wipes it, and takes it back empty: it catches up by snapshot, then votes', () => {
    const { c, leader } = electedCluster({
      seed: 23,
      nodes: 5,
      snapshotThresholdEntries: 10,
      snapshotTrailingEntries: 2,
      keepTrace: true,
    });
    for (let k = 0; k < 20; k++) c.one({ op: 'put', key: `k${k % 3}`, value: `a${k}` }, 5);
    const victim = other(c, leader, 2);
    c.reconfigure({ type: 'removeNode', node: victim });
    expect(c.members()).toEqual({ voters: [0, 1, 2, 3, 4].filter((i) => i !== victim), learners: [] });
    expect(c.isMember(victim)).toBe(false);
    expect(c.progressOf(victim)).toBeNull();

    c.wipe(victim);
    expect(c.isAlive(victim)).toBe(false);
    expect(c.node(victim).disk.empty).toBe(true);
    expect(c.term(victim)).toBe(0);
    // The probe needs only the members: the wiped node is not one.
    for (let k = 0; k < 30; k++) c.one({ op: 'put', key: `k${k % 3}`, value: `b${k}` }, 'members');

    c.rejoin(victim);
    expect(() => c.rejoin(victim)).toThrow(/running/);
    expect(c.membersOf(victim)).toEqual({ voters: [], learners: [] });
    c.advance(500);
    // An empty node outside the membership gets nothing and disturbs no one.
    expect(c.appliedIndex(victim)).toBe(0);
    c.reconfigure({ type: 'addLearner', node: victim });
    const index = c.one({ op: 'put', key: 'after', value: 'join' }, 'members');
    expect(c.hasApplied(victim, index)).toBe(true);
    expect(c.node(victim).disk.storage.snapshot().metadata.index).toBeGreaterThan(20);
    expect(c.traceLines().some((line) => line.includes(`n${victim} restore snapshot`))).toBe(true);
    expect(c.node(victim).peek('k2')).toBe('b29');
    expect(c.membersOf(victim)).toEqual(c.members());

    c.reconfigure({ type: 'addVoter', node: victim });
    expect(c.members()?.voters).toHaveLength(5);
    // It counts: with two other voters down, the leader needs it for a majority of five.
    const down = [0, 1, 2, 3, 4].filter((i) => i !== victim && i !== c.leaderOf()).slice(0, 2);
    for (const i of down) c.crash(i);
    c.one({ op: 'put', key: 'quorum', value: 'with the rejoined node' }, 3);
    for (const i of down) c.restart(i);
    c.one({ op: 'put', key: 'all', value: 'back' }, 5);
    c.checkAll();
  });

  it('takes a wiped node back even when the leader never took a snapshot', () => {
    const { c, leader } = electedCluster({ seed: 24, nodes: 3, snapshotThresholdEntries: null });
    for (let k = 0; k < 5; k++) c.one({ op: 'put', key: 'k', value: String(k) }, 3);
    const victim = other(c, leader);
    c.reconfigure({ type: 'removeNode', node: victim });
    c.wipe(victim);
    c.one({ op: 'put', key: 'k', value: 'without' }, 'members');
    c.rejoin(victim);
    c.reconfigure({ type: 'addLearner', node: victim });
    // The bootstrap snapshot (index 0) carries the first membership; the log replays the rest.
    c.one({ op: 'put', key: 'k', value: 'with' }, 'members');
    expect(c.node(victim).peek('k')).toBe('with');
    expect(c.membersOf(victim)).toEqual(c.members());
    c.reconfigure({ type: 'addVoter', node: victim });
    c.one({ op: 'put', key: 'k', value: 'voter' }, 3);
    c.checkAll();
  });

  it('a removed leader steps down and the remaining voters elect one of themselves', () => {
    const { c, leader } = electedCluster({ seed: 25, nodes: 5 });
    c.one({ op: 'put', key: 'x', value: '1' }, 5);
    c.reconfigure({ type: 'removeNode', node: leader });
    expect(c.isLeader(leader)).toBe(false);
    const next = c.leaderOf();
    expect(next).not.toBeNull();
    expect(next).not.toBe(leader);
    expect(c.members()?.voters).not.toContain(leader);
    // The old leader keeps running outside the membership, and is harmless.
    c.advance(2_000);
    expect(c.leaderOf()).toBe(next);
    c.one({ op: 'put', key: 'x', value: '2' }, 'members');
    c.checkAll();
  });

  it('a demoted leader steps down; promoted back, it votes again', () => {
    const { c, leader } = electedCluster({ seed: 26, nodes: 3 });
    c.reconfigure({ type: 'addLearner', node: leader });
    expect(c.isLeader(leader)).toBe(false);
    expect(c.members()?.learners).toEqual([leader]);
    c.one({ op: 'put', key: 'x', value: 'learner' }, 'members');
    expect(c.node(leader).peek('x')).toBe('learner');
    c.reconfigure({ type: 'addVoter', node: leader });
    expect(c.members()?.voters).toHaveLength(3);
    expect(c.transferLeader({ from: c.leaderOf() ?? 0, to: leader })).toBe(true);
    expect(c.runUntil(() => c.leaderOf() === leader, { timeoutMs: 1_000 })).toBe(true);
    c.checkAll();
  });

  it('reports the leader view of replication, and throws on a change that can never apply', () => {
    const { c, leader } = electedCluster({ seed: 27, nodes: 3 });
    const index = c.one({ op: 'put', key: 'p', value: '1' }, 3);
    expect(c.progressOf(leader)?.match).toBeGreaterThanOrEqual(index);
    c.reconfigure({ type: 'removeNode', node: other(c, leader) });
    const last = c.members()?.voters.find((v) => v !== c.leaderOf());
    if (last === undefined) throw new Error('expected two voters');
    c.reconfigure({ type: 'removeNode', node: last });
    expect(c.members()?.voters).toHaveLength(1);
    expect(() => c.reconfigure({ type: 'removeNode', node: c.leaderOf() ?? 0 })).toThrow(/invalid/);
    expect(() => c.reconfigure({ type: 'addVoter', node: last }, { timeoutMs: 0 })).toThrow(/timeout/);
  });
});
