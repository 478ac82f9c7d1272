import { describe, expect, it } from 'vitest';
import type { Cluster, KvCommandInput } from '../cluster.js';
import { formatRequestId, type KvCommand } from '../kv.js';
import { allNodes, electedCluster, electionTimeoutMs, LeaderCommitWatch } from './helpers.js';

/**
 * Cluster-level regressions for behaviours that are easy to get subtly wrong: liveness
 * under a partial partition (PreVote + CheckQuorum), a new leader's no-op committing
 * older-term entries only indirectly, and the Figure 8 commit rule, staged step by step.
 */

function put(key: string, value: string): KvCommandInput {
  return { op: 'put', key, value };
}

function sameCommand(a: KvCommand | null, b: KvCommand): boolean {
  return a !== null && formatRequestId(a.requestId) === formatRequestId(b.requestId);
}

function appliedAnywhere(c: Cluster, command: KvCommand): boolean {
  return allNodes(c).some((i) => c.applied(i).some((a) => sameCommand(a.command, command)));
}

/** The term of node i's durable entry at `index`, or null. */
function durableTerm(c: Cluster, i: number, index: number): number | null {
  const storage = c.node(i).disk.storage;
  if (index < storage.firstIndex() || index > storage.lastIndex()) return null;
  return storage.term(index);
}

describe('regressions', () => {
  describe.each([
    { cut: 'both ways', toFollower: true, toLeader: true },
    { cut: 'leader to follower', toFollower: true, toLeader: false },
    { cut: 'follower to leader', toFollower: false, toLeader: true },
  ])(
    'partial partition: the link between the leader and one follower cut $cut',
    ({ toFollower, toLeader }) => {
      it('keeps the same leader committing, without term churn, and heals', () => {
        const { c, leader } = electedCluster({ seed: 500, nodes: 3 });
        c.one(put('k', 'start'), 3);
        const term = c.term(leader);
        const cut = (leader + 1) % 3;
        const peer = (leader + 2) % 3;
        if (toFollower) c.cutLink({ from: leader, to: cut });
        if (toLeader) c.cutLink({ from: cut, to: leader });
        const t0 = c.nowMs;
        for (let k = 0; k < 30; k++) {
          const before = c.nowMs;
          c.one(put('k', String(k)), 2, { timeoutMs: 1_000 });
          // Each agreement is quick: no election stalls it.
          expect(c.nowMs - before).toBeLessThan(electionTimeoutMs);
          c.advance(100);
        }
        expect(c.nowMs - t0).toBeGreaterThan(20 * electionTimeoutMs);
        // The cut-off follower could not disrupt the leader nor make anyone change term.
        expect(c.leaderOf()).toBe(leader);
        expect(c.term(leader)).toBe(term);
        expect(c.term(peer)).toBe(term);
        expect(c.term(cut)).toBe(term);

        c.heal();
        c.one(put('k', 'healed'), 3);
        expect(c.node(cut).peek('k')).toBe('healed');
        c.checkAll();
      });
    },
  );

  it("commits an older term's entry only together with the new leader's no-op", () => {
    const { c, leader: old } = electedCluster({ seed: 510, nodes: 3 });
    c.one(put('k', 'base'), 3);
    const oldTerm = c.term(old);
    const heir = (old + 1) % 3;
    const other = (old + 2) % 3;
    // The old leader's entry reaches the heir, but the heir's acknowledgements never come back.
    c.disconnect(other);
    c.cutLink({ from: heir, to: old });
    const orphan = c.command(put('k', 'orphan'));
    const proposed = c.propose(old, orphan);
    expect(proposed.isLeader).toBe(true);
    const index = proposed.index;
    expect(c.runUntil(() => durableTerm(c, heir, index) === oldTerm, { timeoutMs: 100 })).toBe(true);
    expect(c.nCommitted(index).count).toBe(0);

    c.crash(old);
    c.restoreLink({ from: heir, to: old });
    c.connect(other);
    // Only the heir holds the orphan, so only it can win. As leader it must not commit the
    // orphan on its own: its commit index may reach the orphan only past its no-op.
    let committedAlone = false;
    const done = c.runUntil(
      () => {
        const node = c.node(heir);
        if (node.isLeader() && node.commitIndex() === index) committedAlone = true;
        if (c.appliedIndex(heir) === index) committedAlone = true;
        return c.appliedIndex(heir) > index;
      },
      { timeoutMs: 3_000 },
    );
    expect(done).toBe(true);
    expect(committedAlone).toBe(false);
    expect(c.leaderOf()).toBe(heir);
    const newTerm = c.term(heir);
    expect(newTerm).toBeGreaterThan(oldTerm);
    const records = c.node(heir).appliedRecords();
    const orphanRecord = records.find((r) => r.index === index);
    const noop = records.find((r) => r.index === index + 1);
    expect(orphanRecord?.term).toBe(oldTerm);
    expect(sameCommand(orphanRecord?.command ?? null, orphan)).toBe(true);
    expect(noop?.command).toBeNull();
    expect(noop?.term).toBe(newTerm);

    c.restart(old);
    c.one(put('k', 'after'), 3);
    expect(c.nCommitted(index).count).toBe(3);
    c.checkAll();
  });

  it('never commits a previous-term entry by counting replicas (Figure 8, staged)', () => {
    // One entry per append, so the new leader can send the old entry without its no-op.
    const { c, leader: s1 } = electedCluster({
      seed: 520,
      nodes: 5,
      raftLimits: { messageEntriesMax: 1 },
      keepTrace: true,
    });
    c.one(put('k', 'base'), 5);
    const term2 = c.term(s1);
    const s2 = (s1 + 1) % 5;
    const rest = [2, 3, 4].map((d) => (s1 + d) % 5);

    // (a) S1 replicates X to S2 only, then crashes.
    c.partition([[s1, s2], rest]);
    const x = c.command(put('k', 'X'));
    const proposed = c.propose(s1, x);
    expect(proposed.isLeader).toBe(true);
    const index = proposed.index;
    expect(c.runUntil(() => durableTerm(c, s2, index) === term2, { timeoutMs: 100 })).toBe(true);
    c.crash(s1);

    // (b) S5 wins an election in the other three, and is cut off before it replicates anything.
    expect(c.runUntil(() => rest.some((i) => c.isLeader(i)), { timeoutMs: 2_000 })).toBe(true);
    const s5 = rest.find((i) => c.isLeader(i)) ?? -1;
    c.disconnect(s5);
    const term3 = c.term(s5);
    expect(term3).toBeGreaterThan(term2);
    const s3 = rest.find((i) => i !== s5) ?? -1;
    const s4 = rest.find((i) => i !== s5 && i !== s3) ?? -1;
    c.advance(50);
    expect(c.nCommitted(index).count).toBe(0);

    // (c) S1 restarts; S1 or S2 (both hold X) leads again, with S3's vote. The leader copies
    // X to S3, so X is on a majority, but its own no-op is not: it must not commit X by
    // counting replicas.
    c.partition([[s1, s2, s3], [s4], [s5]]);
    c.restart(s1);
    expect(c.runUntil(() => c.isLeader(s1) || c.isLeader(s2), { timeoutMs: 3_000 })).toBe(true);
    const leader4 = c.isLeader(s1) ? s1 : s2;
    const term4 = c.term(leader4);
    expect(term4).toBeGreaterThan(term3);
    expect(c.runUntil(() => durableTerm(c, s3, index) === term2, { timeoutMs: 500 })).toBe(true);
    c.cutLink({ from: leader4, to: s3 });
    const watch = new LeaderCommitWatch(c);
    // Long enough for S3's acknowledgement of X and several heartbeats; short enough that
    // CheckQuorum (S3 no longer answers) has not yet deposed the leader.
    watch.advance(electionTimeoutMs / 2);
    // The leader heard S3 acknowledge X, and S3 never got the no-op.
    const ack = ` deliver appResp n${s3}>n${leader4} t${term4} i${index}`;
    expect(c.traceLines().some((line) => line.endsWith(ack))).toBe(true);
    expect(durableTerm(c, s3, index + 1)).toBeNull();
    expect(c.isLeader(leader4)).toBe(true);
    expect(c.node(leader4).commitIndex()).toBeLessThan(index);
    expect(c.nCommitted(index).count).toBe(0);
    expect(watch.violations).toEqual([]);

    // (d) That leader crashes. Whoever leads next (S5 with S3 and S4 may overwrite X), every
    // node ends with the same entry at X's index, and X is applied only if it stays there.
    c.crash(leader4);
    c.heal();
    for (const i of allNodes(c)) c.connect(i);
    c.one(put('k', 'four'), 4, { timeoutMs: 5_000 });
    c.restart(leader4);
    c.one(put('k', 'all'), 5, { timeoutMs: 5_000 });
    const there = c.nCommitted(index);
    expect(there.count).toBe(5);
    if (!sameCommand(there.command, x)) expect(appliedAnywhere(c, x)).toBe(false);
    c.checkAll();
  });
});
