import { describe, expect, it } from 'vitest';
import { Cluster, type KvCommandInput } from '../cluster.js';
import { formatRequestId } from '../kv.js';
import {
  agreeAll,
  allNodes,
  ChurnClients,
  checkOneLeader,
  electedCluster,
  electionTimeoutMs,
  LeaderCommitWatch,
  scriptRng,
} from './helpers.js';

/**
 * Persistence (in the spirit of MIT 6.824's 2C tests): terms, votes and logs survive
 * crashes, so that restarted nodes neither forget committed entries nor vote twice;
 * Figure 8 of the Raft paper, reliable and unreliable; agreement on a lossy network;
 * churn of crashes and disconnects under continuous proposals.
 */

function put(key: string, value: string): KvCommandInput {
  return { op: 'put', key, value };
}

function restartAll(c: Cluster): void {
  for (const i of allNodes(c)) c.restart(i);
}

describe('persistence', () => {
  it('survives each node crashing and restarting, and every node at once', () => {
    const { c } = electedCluster({ seed: 300, nodes: 3 });
    c.one(put('k', '11'), 3);
    const terms = allNodes(c).map((i) => c.term(i));
    restartAll(c);
    // Terms are durable: a restart never takes a node back to an older term.
    allNodes(c).forEach((i) => {
      expect(c.term(i)).toBeGreaterThanOrEqual(terms[i] ?? 0);
    });
    c.one(put('k', '12'), 3);

    const leader1 = checkOneLeader(c);
    c.restart(leader1);
    c.one(put('k', '13'), 3);

    const leader2 = checkOneLeader(c);
    c.crash(leader2);
    c.one(put('k', '14'), 2);
    c.restart(leader2);
    const fourteen = c.one(put('k', '14b'), 3);
    expect(c.nCommitted(fourteen).count).toBe(3);

    const leader3 = checkOneLeader(c);
    const follower = (leader3 + 1) % 3;
    c.crash(follower);
    c.one(put('k', '15'), 2);
    c.restart(follower);
    c.one(put('k', '16'), 3);

    // Each node in turn, leader or not.
    for (const i of allNodes(c)) {
      c.crash(i);
      c.one(put(`n${i}`, 'while down'), 2);
      c.restart(i);
      c.one(put(`n${i}`, 'back'), 3);
    }
    for (const i of allNodes(c)) {
      expect(c.node(i).peek('k')).toBe('16');
      for (const j of allNodes(c)) expect(c.node(i).peek(`n${j}`)).toBe('back');
    }
    c.checkAll();
  });

  it('survives repeated crashes of majorities in a 5-node cluster', () => {
    const { c } = electedCluster({ seed: 301, nodes: 5 });
    let index = 0;
    for (let iteration = 0; iteration < 5; iteration++) {
      index = c.one(put('k', `a${iteration}`), 5);
      const leader1 = checkOneLeader(c);
      c.crash((leader1 + 1) % 5);
      c.crash((leader1 + 2) % 5);
      c.one(put('k', `b${iteration}`), 3);
      c.crash(leader1);
      c.crash((leader1 + 3) % 5);
      c.crash((leader1 + 4) % 5);
      c.restart((leader1 + 1) % 5);
      c.restart((leader1 + 2) % 5);
      c.advance(2 * electionTimeoutMs);
      c.restart((leader1 + 3) % 5);
      c.one(put('k', `c${iteration}`), 3);
      c.restart((leader1 + 4) % 5);
      c.restart(leader1);
    }
    const last = c.one(put('k', 'end'), 5);
    expect(last).toBeGreaterThan(index);
    for (const i of allNodes(c)) expect(c.node(i).peek('k')).toBe('end');
    c.checkAll();
  });

  it('keeps an entry only the crashed leader and a crashed follower hold (partitioned leader crash)', () => {
    const { c } = electedCluster({ seed: 302, nodes: 3 });
    c.one(put('k', '101'), 3);
    const leader = checkOneLeader(c);
    const outsider = (leader + 2) % 3;
    c.disconnect(outsider);
    const committed = c.one(put('k', '102'), 2);
    c.crash(leader);
    c.crash((leader + 1) % 3);
    c.connect(outsider);
    c.restart(leader);
    // Only the restarted leader holds 102 among the two running nodes: it must win and keep it.
    c.one(put('k', '103'), 2);
    c.restart((leader + 1) % 3);
    c.one(put('k', '104'), 3);
    expect(c.nCommitted(committed).command).toMatchObject({ value: '102' });
    expect(c.nCommitted(committed).count).toBe(3);
    c.checkAll();
  });

  it.each([
    { seed: 1, messageEntriesMax: 1 },
    { seed: 2, messageEntriesMax: 1 },
    { seed: 3, messageEntriesMax: 64 },
  ])(
    'agrees after leaders crash at random points (Figure 8, reliable, seed $seed, $messageEntriesMax entries per append)',
    ({ seed, messageEntriesMax }) => {
      // Few entries per append make old-term entries travel without the new leader's no-op.
      const c = Cluster.create({ seed: 310 + seed, nodes: 5, raftLimits: { messageEntriesMax } });
      const rng = scriptRng(seed, 'figure8');
      const watch = new LeaderCommitWatch(c);
      c.one(put('k', 'start'), 1);
      let up = 5;
      let crashes = 0;
      for (let iteration = 0; iteration < 1000; iteration++) {
        let leader = -1;
        for (const i of allNodes(c)) {
          if (!c.isAlive(i)) continue;
          if (c.propose(i, put(`k${rng.nextInt(4)}`, String(rng.nextUint32()))).isLeader) leader = i;
        }
        watch.advance(rng.chance(0.1) ? rng.nextInt(electionTimeoutMs / 2) : rng.nextInt(13));
        if (leader !== -1 && c.isAlive(leader)) {
          c.crash(leader);
          crashes++;
          up--;
        }
        if (up < 3) {
          const s = rng.nextInt(5);
          if (!c.isAlive(s)) {
            c.restart(s);
            up++;
          }
        }
      }
      for (const i of allNodes(c)) if (!c.isAlive(i)) c.restart(i);
      c.one(put('k', 'end'), 5, { timeoutMs: 20_000 });
      expect(crashes).toBeGreaterThan(30);
      expect(watch.leaderTermsSeen).toBeGreaterThan(10);
      // No leader ever committed an entry of an earlier term by counting its replicas.
      expect(watch.violations).toEqual([]);
      c.checkAll();
    },
  );

  it.each([1, 2])(
    'agrees after leaders are cut off at random on an unreliable, reordering network (Figure 8 unreliable, seed %i)',
    (seed) => {
      const c = Cluster.create({ seed: 320 + seed, nodes: 5, unreliable: true });
      const rng = scriptRng(seed, 'figure8-unreliable');
      const watch = new LeaderCommitWatch(c);
      c.one(put('k', 'start'), 1, { timeoutMs: 20_000 });
      let up = 5;
      for (let iteration = 0; iteration < 600; iteration++) {
        if (iteration === 100) c.setLongReordering(true);
        let leader = -1;
        for (const i of allNodes(c)) {
          const accepted = c.propose(i, put(`k${rng.nextInt(4)}`, String(rng.nextUint32()))).isLeader;
          if (accepted && c.isConnected(i)) leader = i;
        }
        watch.advance(rng.chance(0.1) ? rng.nextInt(electionTimeoutMs / 2) : rng.nextInt(13));
        if (leader !== -1 && rng.chance(0.5)) {
          c.disconnect(leader);
          up--;
        }
        if (up < 3) {
          const s = rng.nextInt(5);
          if (!c.isConnected(s)) {
            c.connect(s);
            up++;
          }
        }
      }
      for (const i of allNodes(c)) c.connect(i);
      // Still unreliable, still reordering: agreement must come anyway.
      c.one(put('k', 'end'), 5, { timeoutMs: 30_000 });
      expect(c.stats().messagesDropped).toBeGreaterThan(0);
      expect(c.stats().messagesDuplicated).toBeGreaterThan(0);
      expect(watch.violations).toEqual([]);
      c.checkAll();
    },
  );

  it('agrees on many concurrent commands on an unreliable network', () => {
    const c = Cluster.create({ seed: 330, nodes: 5, unreliable: true });
    const all: number[] = [];
    for (let iteration = 1; iteration < 40; iteration++) {
      const batch = [0, 1, 2, 3].map((j) => put(`k${j}`, String(100 * iteration + j)));
      all.push(...agreeAll(c, batch, 1));
      all.push(c.one(put('k', String(iteration)), 1, { timeoutMs: 20_000 }));
    }
    c.setUnreliable(false);
    const last = c.one(put('k', 'end'), 5);
    expect(new Set(all).size).toBe(all.length);
    for (const index of all) expect(c.nCommitted(index).count).toBe(5);
    expect(last).toBeGreaterThan(Math.max(...all));
    expect(c.stats().messagesDropped).toBeGreaterThan(0);
    c.checkAll();
  });

  describe.each([
    { unreliable: false, seed: 340 },
    { unreliable: true, seed: 341 },
  ])('churn (unreliable: $unreliable)', ({ unreliable, seed }) => {
    it('keeps every committed command through random crashes, restarts and disconnects', () => {
      const c = Cluster.create({ seed, nodes: 5, unreliable });
      const rng = scriptRng(seed, 'churn');
      const clients = new ChurnClients(c, { count: 3, rng: scriptRng(seed, 'churn-clients') });
      for (let iteration = 0; iteration < 20; iteration++) {
        if (rng.chance(0.2)) c.disconnect(rng.nextInt(5));
        if (rng.chance(0.5)) {
          const i = rng.nextInt(5);
          if (!c.isAlive(i)) c.restart(i);
          c.connect(i);
        }
        if (rng.chance(0.2)) c.crash(rng.nextInt(5));
        c.advance((7 * electionTimeoutMs) / 2);
      }
      c.advance(electionTimeoutMs);
      clients.stop();
      c.setUnreliable(false);
      for (const i of allNodes(c)) {
        if (!c.isAlive(i)) c.restart(i);
        c.connect(i);
      }
      c.advance(electionTimeoutMs);
      const last = c.one(put('k', 'end'), 5, { timeoutMs: 20_000 });

      expect(clients.committed.length).toBeGreaterThan(10);
      for (const { index, command } of clients.committed) {
        expect(index).toBeLessThan(last);
        const there = c.nCommitted(index);
        expect(there.count).toBe(5);
        expect(there.command === null ? null : formatRequestId(there.command.requestId)).toBe(
          formatRequestId(command.requestId),
        );
      }
      c.checkAll();
    });
  });
});
