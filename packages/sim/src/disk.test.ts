import { type Entry, type HardState, MemoryStorage, type Snapshot } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { type DiskOptions, defaultDiskOptions, SimDisk } from './disk.js';
import { Rng } from './rng.js';

function entry(index: number, term: number): Entry {
  return { index, term, type: 0, data: new TextEncoder().encode(`e${index}`) };
}

function disk(options: Partial<DiskOptions> & { seed?: number } = {}): SimDisk {
  return new SimDisk({
    storage: MemoryStorage.bootstrap({ voters: ['n0', 'n1', 'n2'] }),
    disk: { ...defaultDiskOptions, ...options },
    rng: Rng.fork({ seed: options.seed ?? 1, label: 'disk-test' }),
  });
}

const hs = (term: number, commit: number): HardState => ({ term, vote: 'n0', commit });

function lastIndex(d: SimDisk): number {
  return d.storage.lastIndex();
}

describe('SimDisk', () => {
  it('makes a write durable when its fsync completes, within the latency bounds', () => {
    const d = disk({ fsyncLatencyMinMs: 2, fsyncLatencyMaxMs: 6, slowFsyncRate: 0 });
    const write = d.beginWrite({
      snapshot: null,
      entries: [entry(1, 1), entry(2, 1)],
      hardState: hs(1, 1),
      nowMs: 100,
    });
    expect(write.syncAtMs).toBeGreaterThanOrEqual(102);
    expect(write.syncAtMs).toBeLessThanOrEqual(106);
    expect(lastIndex(d)).toBe(0);
    d.completeWrite(write.id);
    expect(lastIndex(d)).toBe(2);
    expect(d.storage.initialState().hardState).toEqual(hs(1, 1));
    // A crash after the sync loses nothing.
    expect(d.crash()).toEqual({ kept: [], lostCount: 0 });
    expect(lastIndex(d)).toBe(2);
  });

  it('wipes everything: log, hard state, membership and the unsynced write', () => {
    const d = disk({ tornWriteRate: 1 });
    expect(d.empty).toBe(false); // it knows its bootstrap membership
    d.completeWrite(
      d.beginWrite({ snapshot: null, entries: [entry(1, 1)], hardState: hs(1, 1), nowMs: 0 }).id,
    );
    d.beginWrite({ snapshot: null, entries: [entry(2, 1)], hardState: hs(1, 2), nowMs: 0 });
    d.wipe();
    expect(d.pending).toBeNull();
    expect(d.empty).toBe(true);
    expect(lastIndex(d)).toBe(0);
    expect(d.storage.initialState()).toEqual({
      hardState: { term: 0, vote: null, commit: 0 },
      confState: { voters: [], learners: [] },
    });
    // Nothing of the write in flight comes back on a crash.
    expect(d.crash()).toEqual({ kept: [], lostCount: 0 });
    expect(d.empty).toBe(true);
  });

  it('loses an unsynced write on a crash when it is not torn', () => {
    const d = disk({ tornWriteRate: 0 });
    d.completeWrite(
      d.beginWrite({ snapshot: null, entries: [entry(1, 1)], hardState: hs(1, 0), nowMs: 0 }).id,
    );
    const write = d.beginWrite({ snapshot: null, entries: [entry(2, 1)], hardState: hs(1, 2), nowMs: 0 });
    expect(d.crash()).toEqual({ kept: [], lostCount: 2 });
    expect(lastIndex(d)).toBe(1);
    expect(d.storage.initialState().hardState).toEqual(hs(1, 0));
    expect(() => d.completeWrite(write.id)).toThrow();
  });

  it('keeps only a prefix of a torn write, its hard state last', () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 200; seed++) {
      const d = disk({ tornWriteRate: 1, seed });
      const entries = [entry(1, 1), entry(2, 1), entry(3, 1)];
      d.beginWrite({ snapshot: null, entries, hardState: hs(1, 3), nowMs: 0 });
      const { kept, lostCount } = d.crash();
      seen.add(kept.length);
      expect(kept.length + lostCount).toBe(4);
      expect(kept.map((r) => r.kind)).toEqual(['entry', 'entry', 'entry', 'hardState'].slice(0, kept.length));
      expect(lastIndex(d)).toBe(Math.min(kept.length, 3));
      const durableHs = d.storage.initialState().hardState;
      expect(durableHs).toEqual(kept.length === 4 ? hs(1, 3) : { term: 0, vote: null, commit: 0 });
    }
    // Every prefix length, from nothing to the whole write, happens for some seed.
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('tears a snapshot write after its snapshot record, and a torn tail truncates a conflicting suffix', () => {
    const d = disk({ tornWriteRate: 1, seed: 3 });
    d.completeWrite(
      d.beginWrite({
        snapshot: null,
        entries: [entry(1, 1), entry(2, 1), entry(3, 1)],
        hardState: hs(1, 1),
        nowMs: 0,
      }).id,
    );
    // A new leader's entries conflict from index 2: any kept entry record cuts the old suffix.
    let tornOnce = false;
    for (let seed = 0; seed < 50 && !tornOnce; seed++) {
      const e = disk({ tornWriteRate: 1, seed });
      e.completeWrite(
        e.beginWrite({
          snapshot: null,
          entries: [entry(1, 1), entry(2, 1), entry(3, 1)],
          hardState: hs(1, 1),
          nowMs: 0,
        }).id,
      );
      e.beginWrite({
        snapshot: null,
        entries: [entry(2, 2), entry(3, 2), entry(4, 2)],
        hardState: hs(2, 1),
        nowMs: 0,
      });
      const { kept } = e.crash();
      if (kept.length === 1) {
        tornOnce = true;
        expect(e.storage.lastIndex()).toBe(2);
        expect(e.storage.term(2)).toBe(2);
      }
    }
    expect(tornOnce).toBe(true);
    const snap: Snapshot = {
      metadata: { index: 10, term: 3, confState: { voters: ['n0', 'n1', 'n2'], learners: [] } },
      data: new Uint8Array(50),
    };
    d.beginWrite({ snapshot: snap, entries: [entry(11, 3)], hardState: hs(3, 10), nowMs: 0 });
    const { kept } = d.crash();
    if (kept.length >= 1) expect(d.storage.snapshot().metadata.index).toBe(10);
    else expect(d.storage.snapshot().metadata.index).toBe(0);
  });

  it('allows one outstanding write at a time', () => {
    const d = disk();
    d.beginWrite({ snapshot: null, entries: [entry(1, 1)], hardState: null, nowMs: 0 });
    expect(() => d.beginWrite({ snapshot: null, entries: [], hardState: hs(1, 0), nowMs: 0 })).toThrow();
  });

  it('counts persisted bytes and compacts behind a snapshot', () => {
    const d = disk();
    const entries = Array.from({ length: 10 }, (_, k) => entry(k + 1, 1));
    d.completeWrite(d.beginWrite({ snapshot: null, entries, hardState: hs(1, 10), nowMs: 0 }).id);
    const before = d.persistedBytes();
    expect(before).toBe(32 + entries.reduce((sum, e) => sum + e.data.byteLength + 24, 0));
    d.createSnapshot({
      snapshot: {
        metadata: { index: 8, term: 1, confState: { voters: ['n0', 'n1', 'n2'], learners: [] } },
        data: new Uint8Array(7),
      },
      compactIndex: 6,
    });
    expect(d.storage.firstIndex()).toBe(7);
    // Entries 7..10 remain: three 2-byte ones and e10.
    expect(d.persistedBytes()).toBe(32 + 7 + 3 * (2 + 24) + (3 + 24));
  });
});
