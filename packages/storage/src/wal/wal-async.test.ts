/**
 * Wal.appendBatchAsync: the write is made at once and shown in memory, its fdatasync runs
 * off the event loop, and only its resolution makes the batch durable. A file is never
 * closed under a sync in flight, and a failed sync fails the WAL as a synchronous one does.
 */
import { describe, expect, it } from 'vitest';
import type { Disk, DiskFile } from '../disk.js';
import { DiskSyncError, WalFailedError } from '../errors.js';
import type { SimDisk } from '../sim-disk.js';
import { entries, hs, simDisk, snapshot, summarizeWal, walDir } from '../testing/fixtures.js';
import { type GroupWrite, Wal } from './wal.js';

function write(groupId: number, fields: Partial<Omit<GroupWrite, 'groupId'>>): GroupWrite {
  return { groupId, entries: [], hardState: null, snapshot: null, ...fields };
}

/** A SimDisk whose files gain a `datasyncAsync` that completes (or fails) when the test says. */
class DeferredSyncDisk implements Disk {
  readonly pending: { file: DiskFile; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Paths closed while a sync was pending on them: must stay empty. */
  readonly closedUnderSync: string[] = [];

  constructor(readonly sim: SimDisk) {}

  open(path: string, options: Parameters<Disk['open']>[1]): DiskFile {
    const file = this.sim.open(path, options);
    const pending = this.pending;
    const closedUnderSync = this.closedUnderSync;
    return {
      path: file.path,
      size: () => file.size(),
      read: (o) => file.read(o),
      append: (data) => file.append(data),
      writeAt: (o) => file.writeAt(o),
      truncate: (size) => file.truncate(size),
      datasync: () => file.datasync(),
      sync: () => file.sync(),
      close: () => {
        if (pending.some((p) => p.file === file)) closedUnderSync.push(file.path);
        file.close();
      },
      datasyncAsync: () => new Promise<void>((resolve, reject) => pending.push({ file, resolve, reject })),
    };
  }

  /** The pending syncs reach the disk now. */
  complete(): void {
    for (const p of this.pending.splice(0)) {
      p.file.datasync();
      p.resolve();
    }
  }

  fail(): void {
    for (const p of this.pending.splice(0)) {
      p.reject(
        new DiskSyncError({ op: 'fdatasync', path: p.file.path, code: 'EIO', cause: new Error('EIO') }),
      );
    }
  }

  exists(path: string): boolean {
    return this.sim.exists(path);
  }
  readdir(dir: string): string[] {
    return this.sim.readdir(dir);
  }
  mkdir(dir: string): void {
    this.sim.mkdir(dir);
  }
  rename(options: { from: string; to: string }): void {
    this.sim.rename(options);
  }
  unlink(path: string): void {
    this.sim.unlink(path);
  }
  syncDir(dir: string): void {
    this.sim.syncDir(dir);
  }
}

describe('Wal.appendBatchAsync', () => {
  it('shows the batch at once, and makes it durable only when the sync resolves', () => {
    let lost = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const sim = simDisk(seed);
      const disk = new DeferredSyncDisk(sim);
      const wal = Wal.open({ disk, dir: walDir });
      wal.appendBatch([write(1, { entries: entries({ from: 1, count: 2, term: 1 }), hardState: hs(1, 0) })]);
      const synced = summarizeWal(wal).get(1);

      void wal.appendBatchAsync([write(1, { entries: entries({ from: 3, count: 3, term: 1 }) })]);
      expect(wal.group(1).lastIndex()).toBe(5);
      // A crash before the sync completes may lose the batch, never what was synced before.
      const crashed = new DeferredSyncDisk(sim);
      sim.crash({ tornWriteRate: 0.8 });
      const recovered = summarizeWal(Wal.open({ disk: crashed, dir: walDir })).get(1);
      expect(recovered?.entries.slice(0, 2)).toEqual(synced?.entries);
      expect([2, 5]).toContain(recovered?.entries.length);
      if (recovered?.entries.length === 2) lost++;
      // The sync never completes: the crash took its file handle.
      disk.pending.splice(0);
    }
    // Written is not durable: some crashes lost the batch.
    expect(lost).toBeGreaterThan(0);
  });

  it('a resolved batch survives a crash', async () => {
    const sim = simDisk(3);
    const disk = new DeferredSyncDisk(sim);
    const wal = Wal.open({ disk, dir: walDir });
    const durable = wal.appendBatchAsync([
      write(1, { entries: entries({ from: 1, count: 4, term: 1 }), hardState: hs(1, 0) }),
    ]);
    disk.complete();
    await durable;
    const before = summarizeWal(wal);
    sim.crash({ tornWriteRate: 1 });
    expect(summarizeWal(Wal.open({ disk: new DeferredSyncDisk(sim), dir: walDir }))).toEqual(before);
  });

  it('never closes a file while its sync is in flight: a rotation or a close waits for it', async () => {
    const sim = simDisk(5);
    const disk = new DeferredSyncDisk(sim);
    const wal = Wal.open({ disk, dir: walDir, limits: { segmentBytesMax: 1024 } });
    const durable = wal.appendBatchAsync([
      write(1, { entries: entries({ from: 1, count: 2, term: 1, dataBytes: 300 }) }),
    ]);
    // Rotates away from the file whose sync is pending: synchronous writes go on meanwhile.
    for (let i = 0; i < 6; i++) {
      wal.appendBatch([write(1, { entries: entries({ from: 3 + i, count: 1, term: 1, dataBytes: 300 }) })]);
    }
    expect(wal.stats().segmentCount).toBeGreaterThan(1);
    expect(disk.closedUnderSync).toEqual([]);
    disk.complete();
    await durable;

    const last = wal.appendBatchAsync([write(1, { hardState: hs(1, 8) })]);
    wal.close();
    expect(disk.closedUnderSync).toEqual([]);
    disk.complete();
    await last;
  });

  it('a segment deletion during a sync in flight makes that batch durable before its checkpoint', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const sim = simDisk(seed);
      const disk = new DeferredSyncDisk(sim);
      const limits = { segmentBytesMax: 1024 };
      const wal = Wal.open({ disk, dir: walDir, limits });
      for (let i = 1; i <= 20; i++) {
        wal.appendBatch([
          write(1, { entries: entries({ from: i, count: 1, term: 1, dataBytes: 200 }), hardState: hs(1, i) }),
        ]);
      }
      // Entries 21-22 and a commit of 22, written; their fdatasync is still in flight.
      void wal.appendBatchAsync([
        write(1, { entries: entries({ from: 21, count: 2, term: 1, dataBytes: 200 }), hardState: hs(1, 22) }),
      ]);
      // A snapshot compacts the log, and segments no group needs go: the checkpoint copies
      // the group's state, commit 22 included, into the metadata file. The snapshot's own
      // frame is synced first, which makes the batch in flight durable with it.
      wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 18, term: 1 }) });
      expect(wal.stats().firstSegmentSeq).toBeGreaterThan(1);
      disk.pending.splice(0);
      sim.crash({ tornWriteRate: 1 });
      const recovered = summarizeWal(Wal.open({ disk: new DeferredSyncDisk(sim), dir: walDir, limits })).get(
        1,
      );
      // Whatever the crash kept, the commit index never passes the last entry.
      const last = recovered?.entries.at(-1)?.index ?? recovered?.snapshot.index ?? 0;
      expect(recovered?.hardState.commit).toBeLessThanOrEqual(last);
      expect(last).toBe(22);
    }
  });

  it('a failed sync rejects with the disk error and fails the WAL', async () => {
    const disk = new DeferredSyncDisk(simDisk(9));
    const wal = Wal.open({ disk, dir: walDir });
    const durable = wal.appendBatchAsync([write(1, { entries: entries({ from: 1, count: 1, term: 1 }) })]);
    disk.fail();
    await expect(durable).rejects.toBeInstanceOf(DiskSyncError);
    expect(() => wal.appendBatch([write(1, { hardState: hs(1, 1) })])).toThrow(WalFailedError);
    expect(() => wal.appendBatchAsync([write(1, { hardState: hs(1, 1) })])).toThrow(WalFailedError);
  });

  it('one batch in flight at a time', () => {
    const disk = new DeferredSyncDisk(simDisk(11));
    const wal = Wal.open({ disk, dir: walDir });
    void wal.appendBatchAsync([write(1, { entries: entries({ from: 1, count: 1, term: 1 }) })]);
    expect(() => wal.appendBatchAsync([write(1, { hardState: hs(1, 1) })])).toThrow(/one batch in flight/);
    disk.complete();
  });
});
