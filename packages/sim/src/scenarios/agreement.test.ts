import { describe, expect, it } from 'vitest';
import { Cluster, type KvCommandInput } from '../cluster.js';
import { formatRequestId, type KvCommand } from '../kv.js';
import { messageOverheadBytes } from '../network.js';
import {
  allNodes,
  checkOneLeader,
  commandEntryBytes,
  electedCluster,
  electionTimeoutMs,
  scriptRng,
  stableLeader,
} from './helpers.js';

/**
 * Log agreement (in the spirit of MIT 6.824's 2B tests): commands proposed at the leader
 * are applied by every node in one order, despite followers and leaders coming and going;
 * nothing commits without a majority; stale leaders' entries are overwritten; a follower
 * far behind is brought back quickly; the traffic for a small agreement stays small.
 */

function put(key: string, value: string): KvCommandInput {
  return { op: 'put', key, value };
}

/** Every node that ever applied a command carrying this request id. */
function appliedAnywhere(c: Cluster, command: KvCommand): number[] {
  const id = formatRequestId(command.requestId);
  return allNodes(c).filter((i) => c.applied(i).some((a) => formatRequestId(a.command.requestId) === id));
}

/** The request ids node i applied, in index order, from index `from` on. */
function appliedIds(c: Cluster, i: number, from = 0): string[] {
  return c
    .applied(i)
    .filter((a) => a.index >= from)
    .map((a) => `${a.index}:${formatRequestId(a.command.requestId)}`);
}

describe('agreement', () => {
  it.each([3, 5])('agrees on consecutive commands in a %i-node cluster (basic agreement)', (nodes) => {
    const { c } = electedCluster({ seed: 200 + nodes, nodes });
    let previous: number | null = null;
    for (let k = 0; k < 5; k++) {
      const next = (previous ?? 0) + 1;
      if (previous !== null) expect(c.nCommitted(next).count).toBe(0);
      const index = c.one(put('a', `v${k}`), nodes);
      if (previous !== null) expect(index).toBe(next);
      const { count, command } = c.nCommitted(index);
      expect(count).toBe(nodes);
      expect(command).toMatchObject({ op: 'put', key: 'a', value: `v${k}` });
      previous = index;
    }
    for (const i of allNodes(c)) expect(c.node(i).peek('a')).toBe('v4');
    c.checkAll();
  });

  it('sends each entry to each follower once on a reliable network (RPC bytes)', () => {
    const { c } = electedCluster({ seed: 210, nodes: 3 });
    c.one(put('warm', 'up'), 3);
    const before = c.stats();
    let entryBytes = 0;
    for (let k = 0; k < 10; k++) {
      const command = c.command(put(`big${k}`, 'x'.repeat(5_000)));
      entryBytes += commandEntryBytes(command);
      c.one(command, 3);
    }
    const after = c.stats();
    const messages = after.messagesSent - before.messagesSent;
    const payload = after.bytesSent - before.bytesSent - messages * messageOverheadBytes;
    expect(payload).toBeGreaterThanOrEqual(2 * entryBytes);
    expect(payload).toBeLessThanOrEqual(2 * entryBytes);
  });

  it('keeps agreeing while a follower is disconnected, and the follower catches up', () => {
    const { c, leader } = electedCluster({ seed: 220, nodes: 3 });
    c.one(put('k', '101'), 3);
    const follower = (leader + 1) % 3;
    c.disconnect(follower);
    const during = [c.one(put('k', '102'), 2), c.one(put('k', '103'), 2)];
    c.advance(2 * electionTimeoutMs);
    during.push(c.one(put('k', '104'), 2), c.one(put('k', '105'), 2));
    for (const index of during) expect(c.nCommitted(index).count).toBe(2);
    expect(checkOneLeader(c)).toBe(leader);
    c.connect(follower);
    c.one(put('k', '106'), 3);
    c.advance(2 * electionTimeoutMs);
    c.one(put('k', '107'), 3);
    for (const index of during) expect(c.nCommitted(index).count).toBe(3);
    expect(c.node(follower).peek('k')).toBe('107');
    c.checkAll();
  });

  it('commits nothing when 3 of 5 followers are gone, and agrees again once they return', () => {
    const { c, leader } = electedCluster({ seed: 230, nodes: 5 });
    c.one(put('k', '10'), 5);
    for (let d = 1; d <= 3; d++) c.disconnect((leader + d) % 5);
    const stale = c.propose(leader, put('k', '20'));
    expect(stale.isLeader).toBe(true);
    c.advance(2_000);
    expect(c.nCommitted(stale.index).count).toBe(0);

    for (let d = 1; d <= 3; d++) c.connect((leader + d) % 5);
    checkOneLeader(c);
    c.one(put('k', '1000'), 5);
    // Whatever sits at the stale index now, all five agree on it.
    expect(c.nCommitted(stale.index).count).toBe(5);
    c.checkAll();
  });

  it("overwrites a minority leader's uncommitted entry once the partition heals", () => {
    const { c, leader } = electedCluster({ seed: 231, nodes: 5 });
    c.one(put('k', 'before'), 5);
    const buddy = (leader + 1) % 5;
    const majority = allNodes(c).filter((i) => i !== leader && i !== buddy);
    c.partition([[leader, buddy], majority]);
    const lostCommand = c.command(put('k', 'lost'));
    const stale = c.propose(leader, lostCommand);
    expect(stale.isLeader).toBe(true);
    c.advance(electionTimeoutMs / 2);
    expect(c.nCommitted(stale.index).count).toBe(0);
    c.advance(1_000);
    c.one(put('k', 'majority'), 3);
    // The majority's new leader has committed its own entries at the stale index.
    expect(c.nCommitted(stale.index).count).toBeGreaterThanOrEqual(3);
    expect(c.nCommitted(stale.index).command).not.toMatchObject({ value: 'lost' });
    expect(appliedAnywhere(c, lostCommand)).toEqual([]);
    c.heal();
    c.one(put('k', 'after'), 5);
    expect(c.nCommitted(stale.index).count).toBe(5);
    expect(appliedAnywhere(c, lostCommand)).toEqual([]);
    for (const i of allNodes(c)) expect(c.node(i).peek('k')).toBe('after');
    c.checkAll();
  });

  it('orders concurrent proposals at the leader without losing any', () => {
    const { c, leader } = electedCluster({ seed: 240, nodes: 3 });
    c.one(put('warm', 'up'), 3);
    const term = c.term(leader);
    const commands = Array.from({ length: 5 }, (_, k) => c.command(put(`c${k}`, String(k))));
    const results = commands.map((command) => c.propose(leader, command));
    for (const r of results) {
      expect(r.isLeader).toBe(true);
      expect(r.term).toBe(term);
    }
    const indexes = results.map((r) => r.index);
    const first = indexes[0] ?? 0;
    expect(indexes).toEqual(indexes.map((_, k) => first + k));
    const committed = c.runUntil(() => indexes.every((index) => c.nCommitted(index).count === 3), {
      timeoutMs: 1_000,
    });
    expect(committed).toBe(true);
    indexes.forEach((index, k) => {
      expect(c.nCommitted(index).command).toMatchObject({ key: `c${k}`, value: String(k) });
    });
    expect(c.term(leader)).toBe(term);
    c.checkAll();
  });

  it("discards a partitioned old leader's uncommitted entries when it rejoins (rejoin)", () => {
    const { c, leader: leader1 } = electedCluster({ seed: 250, nodes: 3 });
    c.one(put('k', '101'), 3);
    c.disconnect(leader1);
    const orphans = ['102', '103', '104'].map((v) => c.command(put('k', v)));
    for (const command of orphans) expect(c.propose(leader1, command).isLeader).toBe(true);
    c.one(put('k', '103'), 2);
    const leader2 = checkOneLeader(c);
    expect(leader2).not.toBe(leader1);
    c.disconnect(leader2);
    c.connect(leader1);
    c.one(put('k', '104'), 2);
    c.connect(leader2);
    const last = c.one(put('k', '105'), 3);
    for (const command of orphans) expect(appliedAnywhere(c, command)).toEqual([]);
    const reference = appliedIds(c, 0);
    expect(reference.at(-1)).toMatch(new RegExp(`^${last}:`));
    for (const i of allNodes(c)) expect(appliedIds(c, i)).toEqual(reference);
    c.checkAll();
  });

  it.each([1, 2])(
    'backs a follower up over many conflicting entries quickly (fast backup, seed %i)',
    (seed) => {
      const c = Cluster.create({ seed: 260 + seed, nodes: 5, keepTrace: true, traceLinesMax: 2_000_000 });
      const rng = scriptRng(seed, 'backup');
      const value = () => String(rng.nextUint32());
      const t0 = c.nowMs;
      c.one(put('k', value()), 5);
      const leader1 = checkOneLeader(c);

      // The leader and one follower in a minority: 50 entries that will never commit.
      for (let d = 2; d <= 4; d++) c.disconnect((leader1 + d) % 5);
      for (let k = 0; k < 50; k++) c.propose(leader1, put('k', value()));
      c.advance(electionTimeoutMs / 2);
      c.disconnect(leader1);
      c.disconnect((leader1 + 1) % 5);

      // The other three commit 50 entries.
      for (let d = 2; d <= 4; d++) c.connect((leader1 + d) % 5);
      for (let k = 0; k < 50; k++) c.one(put('k', value()), 3);

      // Their leader and one follower: another 50 uncommitted entries.
      const leader2 = checkOneLeader(c);
      const other = [2, 3, 4].map((d) => (leader1 + d) % 5).find((i) => i !== leader2) ?? -1;
      c.disconnect(other);
      for (let k = 0; k < 50; k++) c.propose(leader2, put('k', value()));
      c.advance(electionTimeoutMs / 2);

      // The first minority plus `other` now form a majority and must overwrite their
      // conflicting tails before committing 50 more.
      for (const i of allNodes(c)) c.disconnect(i);
      for (const i of [leader1, (leader1 + 1) % 5, other]) c.connect(i);
      for (let k = 0; k < 50; k++) c.one(put('k', value()), 3);

      for (const i of allNodes(c)) c.connect(i);
      c.one(put('k', value()), 5);
      c.checkAll();

      // Bounded virtual time: 150 agreements and three elections, not one round trip per entry.
      expect(c.nowMs - t0).toBeLessThan(6_000);
      // Backing up takes a rejection per conflicting term, not per conflicting entry.
      const rejections = c.traceLines().filter((line) => / deliver appResp .* rej /.test(line)).length;
      expect(rejections).toBeLessThan(20);
    },
  );

  it('sends few messages to elect a leader and to agree on a few commands (RPC counts)', () => {
    const c = Cluster.create({ seed: 270, nodes: 3 });
    expect(c.runUntil(() => stableLeader(c) !== null, { timeoutMs: 3_000 })).toBe(true);
    const election = c.stats().messagesSent;
    expect(election).toBeLessThanOrEqual(30);

    // Idle: heartbeats and their responses only, one round per heartbeat interval.
    const heartbeatMs = c.tickMs;
    const perRound = 2 * (c.nodeCount - 1);
    const idleStart = c.stats();
    c.advance(1_000);
    const idle = c.stats().messagesSent - idleStart.messagesSent;
    expect(idle).toBeLessThanOrEqual(perRound * Math.ceil(1_000 / heartbeatMs) * 1.1);

    // Ten agreements: the heartbeat traffic of the time they took, plus per command and
    // follower a few appends and their responses (the entry, the commit notification, and
    // an append a heartbeat response may trigger while the entry is still syncing).
    const start = c.stats();
    for (let k = 0; k < 10; k++) c.one(put('k', String(k)), 3);
    const end = c.stats();
    const elapsedMs = end.nowMs - start.nowMs;
    const used = end.messagesSent - start.messagesSent;
    expect(elapsedMs).toBeLessThan(10 * 5 * heartbeatMs);
    const bound = perRound * Math.ceil(elapsedMs / heartbeatMs + 1) + 10 * perRound * 4;
    expect(used).toBeLessThanOrEqual(bound);
  });
});
