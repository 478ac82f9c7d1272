import { describe, expect, it } from 'vitest';
import { Cluster, type ClusterOptions, type ReadEvent } from './cluster.js';

function electedCluster(options: ClusterOptions): { c: Cluster; leader: number } {
  const c = Cluster.create(options);
  expect(c.runUntil(() => c.leaderOf() !== null, { timeoutMs: 3_000 })).toBe(true);
  const leader = c.leaderOf();
  if (leader === null) throw new Error('no leader');
  return { c, leader };
}

function allNodes(c: Cluster): number[] {
  return Array.from({ length: c.nodeCount }, (_, i) => i);
}

/** A scripted run mixing every kind of fault; returns its trace hash. */
function scriptedRun(seed: number): string {
  const c = Cluster.create({
    seed,
    nodes: 5,
    unreliable: true,
    snapshotThresholdEntries: 10,
    clockSkewMax: 0.05,
  });
  c.advance(500);
  let k = 0;
  for (let round = 0; round < 6; round++) {
    const victim = round % 5;
    if (round % 3 === 0) c.crash(victim);
    else if (round % 3 === 1) c.split({ minority: [victim, (victim + 1) % 5] });
    else c.ring();
    for (let j = 0; j < 5; j++) {
      const leader = c.leaderOf();
      if (leader !== null) c.propose(leader, { op: 'put', key: `k${k % 3}`, value: `v${k}` });
      k++;
      c.advance(40);
    }
    c.heal();
    for (const i of allNodes(c)) if (!c.isAlive(i)) c.restart(i);
    c.one({ op: 'put', key: 'round', value: String(round) }, 5, { timeoutMs: 20_000 });
  }
  c.checkAll();
  return c.traceHash();
}

describe('Cluster', () => {
  it.each([3, 5])('elects exactly one leader in a %i-node cluster, which all nodes follow', (nodes) => {
    const { c, leader } = electedCluster({ seed: 1, nodes });
    c.advance(500);
    expect(c.leaderOf()).toBe(leader);
    for (const i of allNodes(c)) {
      expect(c.leader(i)).toBe(leader);
      expect(c.isLeader(i)).toBe(i === leader);
      expect(c.term(i)).toBe(c.term(leader));
    }
  });

  it('agrees on a sequence of commands (MIT one / nCommitted)', () => {
    const { c } = electedCluster({ seed: 2, nodes: 3 });
    const indexes: number[] = [];
    for (let k = 0; k < 10; k++) indexes.push(c.one({ op: 'put', key: 'a', value: String(k) }, 3));
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    const last = indexes[indexes.length - 1] ?? 0;
    expect(c.nCommitted(last).count).toBe(3);
    expect(c.nCommitted(last).command).toMatchObject({ op: 'put', key: 'a', value: '9' });
    for (const i of allNodes(c)) {
      expect(c.applied(i).map((a) => a.index)).toEqual(indexes);
      expect(c.node(i).peek('a')).toBe('9');
    }
    expect(c.propose((c.leaderOf() ?? 0) === 0 ? 1 : 0, { op: 'get', key: 'a' }).isLeader).toBe(false);
    c.checkAll();
  });

  it('elects a new leader when the leader is disconnected, and the old one rejoins', () => {
    const { c, leader } = electedCluster({ seed: 3, nodes: 3 });
    c.one({ op: 'put', key: 'x', value: '1' }, 3);
    c.disconnect(leader);
    expect(c.runUntil(() => (c.leaderOf() ?? leader) !== leader, { timeoutMs: 2_000 })).toBe(true);
    c.one({ op: 'put', key: 'x', value: '2' }, 2);
    c.connect(leader);
    c.one({ op: 'put', key: 'x', value: '3' }, 3);
    expect(c.node(leader).peek('x')).toBe('3');
    c.checkAll();
  });

  it('commits nothing in a minority; the majority makes progress and the minority catches up', () => {
    const { c, leader } = electedCluster({ seed: 4, nodes: 5 });
    c.one({ op: 'put', key: 'k', value: 'before' }, 5);
    const others = allNodes(c).filter((i) => i !== leader);
    const buddy = others[0] ?? 0;
    c.partition([[leader, buddy], others.slice(1)]);
    const stale = c.propose(leader, { op: 'put', key: 'k', value: 'lost' });
    expect(stale.isLeader).toBe(true);
    c.advance(1_000);
    expect(c.nCommitted(stale.index).command).not.toMatchObject({ value: 'lost' });
    const index = c.one({ op: 'put', key: 'k', value: 'majority' }, 3);
    c.heal();
    c.one({ op: 'put', key: 'k', value: 'after' }, 5);
    expect(c.nCommitted(index).count).toBe(5);
    for (const i of allNodes(c)) expect(c.node(i).peek('k')).toBe('after');
    expect(
      allNodes(c).some((i) => c.applied(i).some((a) => a.command.op === 'put' && a.command.value === 'lost')),
    ).toBe(false);
    c.checkAll();
  });

  it('keeps a leader and makes progress in a ring and through a bridge', () => {
    const { c } = electedCluster({ seed: 5, nodes: 5 });
    c.ring();
    c.advance(1_000);
    c.one({ op: 'put', key: 'r', value: '1' }, 3);
    c.bridge({ bridge: 2 });
    c.advance(1_000);
    c.one({ op: 'put', key: 'r', value: '2' }, 3);
    c.heal();
    c.one({ op: 'put', key: 'r', value: '3' }, 5);
    c.checkAll();
  });

  it('bounds the log with snapshots and brings a long-dead node back by snapshot', () => {
    const { c, leader } = electedCluster({
      seed: 6,
      nodes: 3,
      snapshotThresholdEntries: 20,
      snapshotTrailingEntries: 5,
    });
    const victim = (leader + 1) % 3;
    c.crash(victim);
    for (let k = 0; k < 100; k++) c.one({ op: 'put', key: `k${k % 5}`, value: String(k) }, 2);
    const bytes = c.persistedBytes(leader);
    expect(c.node(leader).disk.storage.firstIndex()).toBeGreaterThan(50);
    expect(bytes).toBeLessThan(30 * 200);
    c.restart(victim);
    c.one({ op: 'put', key: 'done', value: 'yes' }, 3);
    expect(c.node(victim).peek('k4')).toBe('99');
    expect(c.node(victim).disk.storage.snapshot().metadata.index).toBeGreaterThan(50);
    c.checkAll();
  });

  it('survives crash loops with torn writes and slow disks on an unreliable network', () => {
    const c = Cluster.create({
      seed: 7,
      nodes: 5,
      unreliable: true,
      snapshotThresholdEntries: 8,
      disk: { tornWriteRate: 1, slowFsyncRate: 0.2, slowFsyncMaxMs: 30 },
    });
    let k = 0;
    for (let round = 0; round < 25; round++) {
      const victim = (round * 3) % 5;
      c.schedule({ afterMs: 7 + (round % 11), label: `crash ${victim}`, run: () => c.crash(victim) });
      for (let j = 0; j < 4; j++) {
        const leader = c.leaderOf();
        if (leader !== null) c.propose(leader, { op: 'put', key: 'k', value: String(k++) });
        c.advance(15);
      }
      c.restart(victim);
      if (round % 5 === 4) c.one({ op: 'put', key: 'sync', value: String(round) }, 5, { timeoutMs: 30_000 });
    }
    c.checkAll();
    expect(c.stats().messagesDropped).toBeGreaterThan(0);
  });

  it('crashes a node in the middle of a write and recovers from the torn tail', () => {
    const c = Cluster.create({ seed: 13, nodes: 3, keepTrace: true, disk: { tornWriteRate: 1 } });
    c.advance(500);
    for (let round = 0; round < 30; round++) {
      const victim = round % 3;
      c.crashDuringNextWrite(victim);
      const leader = c.leaderOf();
      if (leader !== null) c.propose(leader, { op: 'put', key: 'k', value: String(round) });
      c.advance(30);
      expect(c.isAlive(victim)).toBe(false);
      c.restart(victim);
      c.one({ op: 'put', key: 'k', value: `sync${round}` }, 3, { timeoutMs: 20_000 });
    }
    c.checkAll();
    const crashes = c.traceLines().filter((line) => / crash kept /.test(line));
    expect(crashes).toHaveLength(30);
    // Some crashes kept part of the write, some kept none of it.
    expect(crashes.some((line) => / kept [1-9]/.test(line))).toBe(true);
    expect(crashes.some((line) => / kept 0 lost [1-9]/.test(line))).toBe(true);
  });

  it('serves quorum and lease reads at the leader with the latest acknowledged value', () => {
    const { c, leader } = electedCluster({ seed: 8, nodes: 3 });
    c.one({ op: 'put', key: 'r', value: 'v1' }, 3);
    const reads: ReadEvent[] = [];
    c.onRead((event) => reads.push(event));
    expect(c.read(leader, { context: 'q1', key: 'r', mode: 'quorum' }).ok).toBe(true);
    expect(c.read(leader, { context: 'l1', key: 'r', mode: 'lease' }).ok).toBe(true);
    const follower = (leader + 1) % 3;
    expect(c.read(follower, { context: 'f1', key: 'r', mode: 'quorum' })).toEqual({
      ok: false,
      errorCode: 'NOT_LEADER',
    });
    expect(c.runUntil(() => reads.length === 2, { timeoutMs: 1_000 })).toBe(true);
    expect(reads.map((r) => [r.request.context, r.ok, r.value]).sort()).toEqual([
      ['l1', true, 'v1'],
      ['q1', true, 'v1'],
    ]);
  });

  it('tells apply listeners the result of each command', () => {
    const { c } = electedCluster({ seed: 9, nodes: 3 });
    const results: string[] = [];
    c.onApply(({ node, outcome }) => {
      if (node === 0 && outcome !== null && outcome.kind === 'executed')
        results.push(JSON.stringify(outcome.result));
    });
    c.one({ op: 'cas', key: 'c', expected: null, value: '1' }, 3);
    c.one({ op: 'cas', key: 'c', expected: '0', value: '2' }, 3);
    c.one({ op: 'get', key: 'c' }, 3);
    expect(results).toEqual([
      '{"op":"cas","ok":true,"previous":null}',
      '{"op":"cas","ok":false,"previous":"1"}',
      '{"op":"get","value":"1"}',
    ]);
  });

  it('is deterministic: the same seed gives the same trace hash, different seeds differ', () => {
    const a = scriptedRun(11);
    expect(scriptedRun(11)).toBe(a);
    expect(scriptedRun(12)).not.toBe(a);
    const quiet = (seed: number) => {
      const c = Cluster.create({ seed, nodes: 3 });
      c.advance(1_000);
      return c.traceHash();
    };
    expect(quiet(1)).toBe(quiet(1));
    expect(quiet(1)).not.toBe(quiet(2));
  });

  it('counts messages and bytes, and advances virtual time exactly', () => {
    const { c } = electedCluster({ seed: 10, nodes: 3 });
    const before = c.stats();
    c.advance(1_000);
    const after = c.stats();
    expect(after.nowMs).toBe(before.nowMs + 1_000);
    expect(after.messagesSent).toBeGreaterThan(before.messagesSent);
    expect(after.bytesSent).toBeGreaterThan(before.bytesSent);
  });
});
