import { describe, expect, it } from 'vitest';
import { Cluster, type KvCommandInput } from '../cluster.js';
import {
  agreeAll,
  allNodes,
  checkOneLeader,
  electedCluster,
  scriptRng,
  snapshotJumps,
  waitForConvergence,
} from './helpers.js';

/**
 * Snapshots and log compaction (in the spirit of MIT 6.824's 2D tests): nodes compact
 * their logs once `snapshotThresholdEntries` entries were applied, so the persisted state
 * stays bounded; a follower that falls behind the leader's compacted log (lagging,
 * disconnected or crashed) is brought back by InstallSnapshot; a whole cluster restarts
 * from its snapshots with the same state.
 */

const threshold = 10;
/** A generous bound on a node's persisted bytes: a snapshot of a few keys plus ~2 thresholds of entries. */
const persistedBytesMax = 4_000;

function put(key: string, value: string): KvCommandInput {
  return { op: 'put', key, value };
}

function maxPersistedBytes(c: Cluster): number {
  return Math.max(...allNodes(c).map((i) => c.persistedBytes(i)));
}

function stateOf(c: Cluster, i: number): string {
  const state = c.node(i).stateSnapshot();
  return state === null ? '<down>' : new TextDecoder().decode(state);
}

describe('snapshots', () => {
  it('brings a lagging follower (cut off from the leader only) back with a snapshot', () => {
    const { c, leader } = electedCluster({ seed: 400, nodes: 3, snapshotThresholdEntries: threshold });
    c.one(put('k', 'start'), 3);
    const lagging = (leader + 1) % 3;
    const behindAt = c.appliedIndex(lagging);
    c.cutLink({ from: leader, to: lagging });
    for (let k = 0; k < 5 * threshold; k++) c.one(put(`k${k % 4}`, String(k)), 2);
    expect(c.appliedIndex(lagging)).toBe(behindAt);
    // The leader compacted past everything the follower has.
    expect(c.node(leader).disk.storage.firstIndex()).toBeGreaterThan(behindAt + 1);
    // PreVote and CheckQuorum: the follower that hears nothing cannot unseat the leader.
    expect(c.leaderOf()).toBe(leader);
    expect(c.term(lagging)).toBe(c.term(leader));

    c.restoreLink({ from: leader, to: lagging });
    const last = c.one(put('k', 'end'), 3);
    expect(snapshotJumps(c, lagging)).toBe(1);
    expect(c.node(lagging).disk.storage.snapshot().metadata.index).toBeGreaterThan(behindAt);
    expect(c.nCommitted(last).count).toBe(3);
    expect(stateOf(c, lagging)).toBe(stateOf(c, leader));
    c.checkAll();
  });

  it('brings a crashed follower back with a snapshot after the leader compacted its log', () => {
    const { c, leader } = electedCluster({ seed: 401, nodes: 3, snapshotThresholdEntries: threshold });
    c.one(put('k', 'start'), 3);
    const victim = (leader + 2) % 3;
    c.crash(victim);
    const lastBeforeCrash = c.node(victim).disk.storage.lastIndex();
    for (let k = 0; k < 10 * threshold; k++) c.one(put(`k${k % 4}`, String(k)), 2);
    expect(c.node(leader).disk.storage.firstIndex()).toBeGreaterThan(lastBeforeCrash + 1);
    expect(maxPersistedBytes(c)).toBeLessThan(persistedBytesMax);

    c.restart(victim);
    c.one(put('k', 'end'), 3);
    // It received a snapshot: its state machine jumped over entries it never applied.
    expect(snapshotJumps(c, victim)).toBe(1);
    const applied = c.applied(victim).map((a) => a.index);
    expect(
      applied.some((index) => index > lastBeforeCrash && index < c.appliedIndex(victim) - threshold),
    ).toBe(false);
    expect(c.node(victim).disk.storage.snapshot().metadata.index).toBeGreaterThan(lastBeforeCrash);
    expect(c.persistedBytes(victim)).toBeLessThan(persistedBytesMax);
    expect(c.node(victim).peek('k3')).toBe(String(10 * threshold - 1));
    c.checkAll();
  });

  describe.each([
    { fault: 'disconnect', unreliable: false, seed: 410 },
    { fault: 'disconnect', unreliable: true, seed: 411 },
    { fault: 'crash', unreliable: false, seed: 412 },
    { fault: 'crash', unreliable: true, seed: 413 },
  ] as const)('install snapshot ($fault, unreliable: $unreliable)', ({ fault, unreliable, seed }) => {
    it('catches up victims by snapshot, round after round, with bounded logs', () => {
      const c = Cluster.create({ seed, nodes: 3, unreliable, snapshotThresholdEntries: threshold });
      const rng = scriptRng(seed, 'snapshot-install');
      const value = () => String(rng.nextUint32());
      const options = { timeoutMs: 30_000 };
      c.one(put('k', value()), 3, options);
      let leader = checkOneLeader(c, options);
      for (let round = 0; round < 12; round++) {
        // Every third round the victim is the leader itself and proposals go to a follower.
        let victim = (leader + 1) % 3;
        let sender = leader;
        if (round % 3 === 1) {
          victim = leader;
          sender = (leader + 1) % 3;
        }
        if (fault === 'disconnect') c.disconnect(victim);
        else c.crash(victim);
        c.one(put('k', value()), 2, options);
        const n = threshold / 2 + rng.nextInt(threshold);
        for (let k = 0; k < n; k++) c.propose(sender, put(`k${k % 4}`, value()));
        c.one(put('k', value()), 2, options);
        expect(maxPersistedBytes(c)).toBeLessThan(persistedBytesMax);
        if (fault === 'disconnect') c.connect(victim);
        else c.restart(victim);
        c.one(put('k', value()), 3, options);
        leader = checkOneLeader(c, options);
      }
      const jumps = allNodes(c).reduce((sum, i) => sum + snapshotJumps(c, i), 0);
      expect(jumps).toBeGreaterThanOrEqual(4);
      expect(maxPersistedBytes(c)).toBeLessThan(persistedBytesMax);
      c.checkAll();
    });
  });

  it('restarts every node from its snapshot with the same state after all crash', () => {
    const { c } = electedCluster({ seed: 420, nodes: 3, snapshotThresholdEntries: threshold });
    let previous = 0;
    for (let round = 0; round < 5; round++) {
      const n = threshold + 1 + round * 3;
      for (let k = 0; k < n; k++) previous = c.one(put(`k${k % 4}`, `${round}.${k}`), 3);
      expect(waitForConvergence(c, { timeoutMs: 1_000 })).toBe(true);
      const before = stateOf(c, 0);
      const appliedBefore = c.appliedIndex(0);
      for (const i of allNodes(c)) expect(stateOf(c, i)).toBe(before);

      for (const i of allNodes(c)) c.crash(i);
      for (const i of allNodes(c)) c.restart(i);
      // Each node boots from its latest snapshot plus the tail it knows to be committed...
      for (const i of allNodes(c)) {
        const snapshotIndex = c.node(i).disk.storage.snapshot().metadata.index;
        expect(snapshotIndex).toBeGreaterThan(0);
        expect(snapshotIndex).toBeGreaterThan(previous - 2 * threshold);
        expect(c.appliedIndex(i)).toBeGreaterThanOrEqual(snapshotIndex);
      }
      // ...then, under a new leader, the rest: the same state as before the crash.
      const caughtUp = c.runUntil(() => allNodes(c).every((i) => c.appliedIndex(i) > appliedBefore), {
        timeoutMs: 2_000,
      });
      expect(caughtUp).toBe(true);
      expect(waitForConvergence(c, { timeoutMs: 1_000 })).toBe(true);
      for (const i of allNodes(c)) expect(stateOf(c, i)).toBe(before);

      const index = c.one(put('after', String(round)), 3);
      expect(index).toBeGreaterThan(previous);
      previous = index;
    }
    c.checkAll();
  });

  it('keeps the persisted log bounded under many proposals', () => {
    const { c } = electedCluster({ seed: 430, nodes: 3, snapshotThresholdEntries: 20 });
    let high = 0;
    let written = 0;
    for (let batch = 0; batch < 50; batch++) {
      const inputs = Array.from({ length: 10 }, (_, k) =>
        put(`k${k % 5}`, `${batch}.${k}.${'x'.repeat(50)}`),
      );
      agreeAll(c, inputs, 3);
      written += inputs.length;
      high = Math.max(high, maxPersistedBytes(c));
    }
    expect(written).toBe(500);
    // 500 entries of ~130 bytes would be ~65 kB without compaction.
    expect(high).toBeLessThan(2 * persistedBytesMax);
    for (const i of allNodes(c)) expect(c.node(i).disk.storage.firstIndex()).toBeGreaterThan(400);
    c.checkAll();
  });
});
