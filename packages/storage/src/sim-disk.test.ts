import { createPrng } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { DiskError, DiskSyncError } from './errors.js';
import { SimDisk, SimulatedCrashError } from './sim-disk.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

function disk(seed = 7): SimDisk {
  const d = new SimDisk({ random: createPrng(seed) });
  d.mkdir('/d');
  return d;
}

describe('SimDisk', () => {
  it('keeps synced bytes and loses unsynced ones when no write survives', () => {
    const d = disk();
    const f = d.open('/d/a', { mode: 'create' });
    f.append(bytes(1, 2, 3));
    f.datasync();
    d.syncDir('/d');
    f.append(bytes(4, 5, 6));
    expect(d.fileBytes('/d/a')).toEqual(bytes(1, 2, 3, 4, 5, 6));
    // Neither keep nor tear the unsynced write: every draw of this source says "lose it".
    const lose = new SimDisk({ random: { nextFloat: () => 0 } });
    lose.mkdir('/d');
    const g = lose.open('/d/a', { mode: 'create' });
    g.append(bytes(1, 2, 3));
    g.datasync();
    lose.syncDir('/d');
    g.append(bytes(4, 5, 6));
    const report = lose.crash({ tornWriteRate: 0 });
    expect(lose.fileBytes('/d/a')).toEqual(bytes(1, 2, 3));
    expect(report.files.get('/d/a')).toMatchObject({ lostOps: 1, keptOps: 0, torn: false });
  });

  it('after a crash a file holds its synced bytes plus a prefix of the unsynced ones', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const d = disk(seed);
      const f = d.open('/d/a', { mode: 'create' });
      f.append(bytes(1, 2));
      f.datasync();
      d.syncDir('/d');
      f.append(bytes(3, 4, 5, 6));
      f.append(bytes(7, 8));
      d.crash({ tornWriteRate: 0.5 });
      const after = [...d.fileBytes('/d/a')];
      expect(after.slice(0, 2)).toEqual([1, 2]);
      expect([1, 2, 3, 4, 5, 6, 7, 8].slice(0, after.length)).toEqual(after);
    }
  });

  it('tears writes and flips bits only in unsynced bytes', () => {
    let torn = 0;
    let flipped = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const d = disk(seed);
      const f = d.open('/d/a', { mode: 'create' });
      f.append(new Uint8Array(16).fill(0xaa));
      f.datasync();
      d.syncDir('/d');
      f.append(new Uint8Array(64).fill(0x55));
      const report = d.crash({ tornWriteRate: 1, bitFlipRate: 1 });
      const info = report.files.get('/d/a');
      if (info?.torn) torn++;
      if (info?.bitFlipped) flipped++;
      expect([...d.fileBytes('/d/a').subarray(0, 16)]).toEqual(new Array(16).fill(0xaa));
    }
    expect(torn).toBeGreaterThan(50);
    expect(flipped).toBeGreaterThan(50);
  });

  it('undoes overwrites and truncations that were not synced', () => {
    const d = new SimDisk({ random: { nextFloat: () => 0 } });
    d.mkdir('/d');
    const f = d.open('/d/a', { mode: 'create' });
    f.append(bytes(1, 2, 3, 4));
    f.sync();
    d.syncDir('/d');
    f.writeAt({ offset: 1, data: bytes(9, 9, 9, 9, 9) });
    f.truncate(2);
    f.truncate(10);
    d.crash({ tornWriteRate: 0 });
    expect(d.fileBytes('/d/a')).toEqual(bytes(1, 2, 3, 4));
  });

  it('forgets creates and renames a directory sync did not cover', () => {
    const d = new SimDisk({ random: { nextFloat: () => 0 } });
    d.mkdir('/d');
    const f = d.open('/d/new', { mode: 'create' });
    f.append(bytes(1));
    f.sync();
    d.crash();
    expect(d.exists('/d/new')).toBe(false);

    const g = d.open('/d/old', { mode: 'create' });
    g.append(bytes(1));
    g.sync();
    d.syncDir('/d');
    d.rename({ from: '/d/old', to: '/d/renamed' });
    d.crash();
    expect(d.readdir('/d')).toEqual(['old']);
  });

  it('makes handles from before a crash unusable', () => {
    const d = disk();
    const f = d.open('/d/a', { mode: 'create' });
    d.crash();
    expect(() => f.append(bytes(1))).toThrow(DiskError);
  });

  it('fails a sync with EIO, and keeps failing that file (the kernel may have dropped its pages)', () => {
    const d = disk();
    const f = d.open('/d/a', { mode: 'create' });
    d.failSync({ pathIncludes: '/d/a' });
    f.append(bytes(1));
    expect(() => f.datasync()).toThrow(DiskSyncError);
    expect(() => f.datasync()).toThrow(DiskSyncError);
    const other = d.open('/d/b', { mode: 'create' });
    other.append(bytes(2));
    expect(() => other.datasync()).not.toThrow();
  });

  it('halts at a scheduled crash point until crash()', () => {
    const d = disk();
    const f = d.open('/d/a', { mode: 'create' });
    d.scheduleCrash({ afterSyncs: 1 });
    f.append(bytes(1));
    f.datasync();
    f.append(bytes(2));
    expect(() => f.datasync()).toThrow(SimulatedCrashError);
    expect(d.halted).toBe(true);
    expect(() => d.readdir('/d')).toThrow(SimulatedCrashError);
    d.crash({ tornWriteRate: 0 });
    expect(d.halted).toBe(false);
    expect(d.fileBytes('/d/a').subarray(0, 1)).toEqual(bytes(1));
  });

  it('is deterministic for a seed', () => {
    const run = (): number[] => {
      const d = disk(42);
      const f = d.open('/d/a', { mode: 'create' });
      for (let i = 0; i < 20; i++) f.append(new Uint8Array(10).fill(i));
      d.crash({ tornWriteRate: 0.7, bitFlipRate: 0.5 });
      return d.exists('/d/a') ? [...d.fileBytes('/d/a')] : [];
    };
    expect(run()).toEqual(run());
  });
});
