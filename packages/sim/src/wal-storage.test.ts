import { describe, expect, it } from 'vitest';
import { parseCli } from './args.js';
import { Cluster, type ClusterOptions } from './cluster.js';
import { allFaultKinds, allWalFaultKinds, parseFaultKinds } from './faults.js';
import { Rng } from './rng.js';
import { runSeed } from './run.js';
import { WalDisk } from './wal-disk.js';

function walCluster(options: Partial<ClusterOptions> & { seed: number }): Cluster {
  const c = Cluster.create({ nodes: 3, storage: 'wal', keepTrace: true, ...options });
  expect(c.runUntil(() => c.leaderOf() !== null, { timeoutMs: 3_000 })).toBe(true);
  return c;
}

function leader(c: Cluster): number {
  const l = c.leaderOf();
  if (l === null) throw new Error('no leader');
  return l;
}

function follower(c: Cluster): number {
  const l = leader(c);
  return l === 0 ? 1 : 0;
}

describe("storage 'wal': the real WAL and snapshot store over a faulty disk", () => {
  it('agrees, and survives crashes and restarts with torn writes', () => {
    const c = walCluster({ seed: 11, snapshotThresholdEntries: 8, snapshotTrailingEntries: 2 });
    expect(c.node(0).disk).toBeInstanceOf(WalDisk);
    let k = 0;
    for (let round = 0; round < 8; round++) {
      const victim = round % 2 === 0 ? leader(c) : follower(c);
      c.crashDuringNextWrite(victim);
      for (let j = 0; j < 3; j++) c.one({ op: 'put', key: `k${k % 4}`, value: `v${k++}` }, 2);
      c.cancelCrashesDuringWrite();
      for (let i = 0; i < 3; i++) if (!c.isAlive(i)) c.restart(i);
      c.one({ op: 'put', key: 'round', value: String(round) }, 3);
    }
    const lines = c.traceLines();
    expect(lines.some((l) => l.includes('torn-write crash'))).toBe(true);
    expect(lines.some((l) => l.includes('stopped') && l.includes('SimulatedCrashError'))).toBe(true);
    for (let i = 0; i < 3; i++) {
      expect(c.persistedBytes(i)).toBeGreaterThan(0);
      expect(c.node(i).peek('round')).toBe('7');
    }
    c.checkAll();
  });

  it('stops a node on an fsync error, never retrying; a restart recovers from disk', () => {
    const c = walCluster({ seed: 5 });
    c.one({ op: 'put', key: 'a', value: '1' }, 3);
    const f = follower(c);
    c.failSync(f);
    c.one({ op: 'put', key: 'b', value: '2' }, 2);
    c.advance(200);
    expect(c.isAlive(f)).toBe(false);
    const stopped = c.traceLines().filter((l) => l.includes('stopped'));
    expect(stopped.some((l) => l.includes('DiskSyncError EIO'))).toBe(true);
    c.restart(f);
    expect(c.isAlive(f)).toBe(true);
    c.one({ op: 'put', key: 'c', value: '3' }, 3);
    expect(c.node(f).peek('b')).toBe('2');
    c.checkAll();
  });

  it('a node whose WAL rotted refuses to start; the others stay live', () => {
    const c = walCluster({ seed: 3 });
    for (let k = 0; k < 10; k++) c.one({ op: 'put', key: `k${k}`, value: String(k) }, 3);
    const f = follower(c);
    const hit = c.bitflip(f, Rng.fork({ seed: 3, label: 'test-bitflip' }));
    expect(hit).toMatch(/\/node\/wal\//);
    expect(c.isAlive(f)).toBe(false);
    c.restart(f);
    expect(c.isAlive(f)).toBe(false);
    expect(c.refused(f)).toMatch(/WalCorruptionError/);
    for (let k = 0; k < 5; k++) c.one({ op: 'put', key: `after${k}`, value: String(k) }, 2);
    // The probe over every member does not wait for the refused node.
    c.one({ op: 'put', key: 'probe', value: 'x' }, 'members');
    c.checkAll();
  });

  it('replays: the same seed gives the same trace hash, with every fault kind', () => {
    const options = {
      seed: 21,
      nodes: 3,
      faults: allWalFaultKinds,
      storage: 'wal',
      faultPhaseMs: 3_000,
    } as const;
    const a = runSeed(options);
    const b = runSeed(options);
    expect(a.failure).toBeNull();
    expect(a.traceHash).toBe(b.traceHash);
    expect(runSeed({ ...options, storage: 'memory', faults: allFaultKinds }).traceHash).not.toBe(a.traceHash);
  });

  it('sweeps a few seeds with fsync and bitflip faults', () => {
    for (const seed of [1, 2, 3, 4]) {
      const result = runSeed({
        seed,
        nodes: 3,
        faults: ['crash', 'torn', 'fsync', 'bitflip'],
        storage: 'wal',
        faultPhaseMs: 4_000,
      });
      expect(result.failure).toBeNull();
    }
  });

  it('regression: an fsync error armed but not yet fired at healing is disarmed by a restart', () => {
    // Seed 16: n3's fsync error was armed at t=7206 while it was partitioned and fired at
    // t=8075, in the liveness phase, taking a voter down for good next to a refused node.
    const result = runSeed({ seed: 16, nodes: 5, faults: allWalFaultKinds, storage: 'wal' });
    expect(result.failure).toBeNull();
  });

  it('parses --storage and keeps wal-only faults out of memory mode', () => {
    expect(parseFaultKinds('all')).toEqual(allFaultKinds);
    expect(parseFaultKinds('all', { storage: 'wal' })).toEqual(allWalFaultKinds);
    expect(allWalFaultKinds).toEqual(expect.arrayContaining(['fsync', 'bitflip']));
    expect(() => parseFaultKinds('fsync')).toThrow(/--storage wal/);
    expect(parseCli(['--storage', 'wal', '--faults', 'bitflip'])?.storage).toBe('wal');
    expect(parseCli([])?.storage).toBe('memory');
    expect(() => parseCli(['--storage', 'disk'])).toThrow(/--storage/);
  });
});
