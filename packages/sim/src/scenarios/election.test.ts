import { describe, expect, it } from 'vitest';
import { Cluster } from '../cluster.js';
import {
  agreedTerm,
  allNodes,
  checkOneLeader,
  electedCluster,
  electionTimeoutMs,
  noConnectedLeader,
  reachable,
  scriptRng,
} from './helpers.js';

/**
 * Leader election (in the spirit of MIT 6.824's 2A tests), driven through the simulator's
 * scripting API with the production core (PreVote and CheckQuorum on, as by default).
 */
describe('election', () => {
  it.each([3, 5])(
    'elects exactly one leader in a %i-node cluster; terms stay put when nothing fails',
    (nodes) => {
      const c = Cluster.create({ seed: 100 + nodes, nodes });
      const leader = checkOneLeader(c, { timeoutMs: 3_000 });
      // The first election is quick: a few election timeouts at most.
      expect(c.nowMs).toBeLessThan(10 * electionTimeoutMs);
      const term = agreedTerm(c);
      expect(term).not.toBeNull();
      expect(term).toBeGreaterThanOrEqual(1);
      // Nothing fails, so nothing should change: same leader, same term, for many timeouts.
      const changed = c.runUntil(() => c.leaderOf() !== leader || agreedTerm(c) !== term, {
        timeoutMs: 3_000,
      });
      expect(changed).toBe(false);
      expect(checkOneLeader(c)).toBe(leader);
      c.checkAll();
    },
  );

  it('elects a new leader when the leader is disconnected, and the old one rejoins without disrupting it', () => {
    const { c, leader: leader1 } = electedCluster({ seed: 110, nodes: 3 });
    const t0 = c.nowMs;
    c.disconnect(leader1);
    const leader2 = checkOneLeader(c);
    expect(leader2).not.toBe(leader1);
    expect(c.nowMs - t0).toBeLessThan(1_000);
    const term2 = c.term(leader2);
    // CheckQuorum: the cut-off leader notices it lost its majority and steps down.
    expect(c.runUntil(() => !c.isLeader(leader1), { timeoutMs: 4 * electionTimeoutMs })).toBe(true);

    // The old leader rejoins: PreVote keeps it from forcing a new election.
    c.connect(leader1);
    expect(checkOneLeader(c)).toBe(leader2);
    c.advance(1_000);
    expect(checkOneLeader(c)).toBe(leader2);
    expect(c.term(leader2)).toBe(term2);

    // Two of three gone: the one left must not become leader, however long it waits.
    const other = (leader2 + 1) % 3;
    c.disconnect(leader2);
    c.disconnect(other);
    expect(c.runUntil(() => !noConnectedLeader(c), { timeoutMs: 2_000 })).toBe(false);
    // Nor can either disconnected node (each is alone); the old leader stepped down.
    expect(c.leaderOf()).toBeNull();

    // A majority again: a leader emerges quickly.
    c.connect(other);
    const t1 = c.nowMs;
    checkOneLeader(c);
    expect(c.nowMs - t1).toBeLessThan(1_000);
    c.connect(leader2);
    checkOneLeader(c);
    c.checkAll();
  });

  it('does not inflate terms on nodes that cannot win (PreVote)', () => {
    const { c, leader } = electedCluster({ seed: 111, nodes: 3 });
    const term = c.term(leader);
    const loner = (leader + 1) % 3;
    c.disconnect(loner);
    c.advance(3_000);
    expect(c.term(loner)).toBe(term);
    c.connect(loner);
    expect(checkOneLeader(c)).toBe(leader);
    expect(agreedTerm(c)).toBe(term);
  });

  it('elects no leader without a majority (3 of 5 disconnected), and recovers once one reconnects', () => {
    const { c, leader } = electedCluster({ seed: 120, nodes: 5 });
    const gone = [leader, (leader + 1) % 5, (leader + 2) % 5];
    for (const i of gone) c.disconnect(i);
    expect(reachable(c)).toHaveLength(2);
    expect(c.runUntil(() => !noConnectedLeader(c), { timeoutMs: 3_000 })).toBe(false);
    expect(c.leaderOf()).toBeNull();

    c.connect(gone[1] ?? 0);
    const t0 = c.nowMs;
    const next = checkOneLeader(c);
    expect(c.nowMs - t0).toBeLessThan(1_000);
    expect(next).not.toBe(leader);
    for (const i of gone) c.connect(i);
    checkOneLeader(c);
    c.checkAll();
  });

  it.each([1, 2, 3])('survives many elections under repeated random disconnects (seed %i)', (seed) => {
    const nodes = 7;
    const c = Cluster.create({ seed: 130 + seed, nodes });
    const rng = scriptRng(seed, 'many-elections');
    checkOneLeader(c);
    const leaders = new Set<string>();
    for (let iteration = 0; iteration < 15; iteration++) {
      // Disconnect three of seven: a majority of four stays.
      const victims = rng.shuffle(allNodes(c)).slice(0, 3);
      for (const i of victims) c.disconnect(i);
      const t0 = c.nowMs;
      const leader = checkOneLeader(c);
      expect(c.nowMs - t0).toBeLessThan(2_000);
      expect(victims).not.toContain(leader);
      leaders.add(`${leader}@${c.term(leader)}`);
      for (const i of victims) c.connect(i);
      c.advance(rng.intBetween({ min: 0, max: 3 * electionTimeoutMs }));
    }
    checkOneLeader(c);
    expect(leaders.size).toBeGreaterThan(1);
    c.checkAll();
  });
});
