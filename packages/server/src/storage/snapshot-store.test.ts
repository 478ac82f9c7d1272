import { describe, expect, it } from 'vitest';
import { DurableStorage } from './durable-storage.js';
import { SnapshotCorruptionError, SnapshotUnavailableError, StorageLimitError } from './errors.js';
import { SnapshotStore, snapshotFileName } from './snapshot-store.js';
import { entries, hs, simDisk, snapshot } from './testing/fixtures.js';

const dir = '/data/snap';

describe('SnapshotStore', () => {
  it('round-trips a snapshot, reading it back in chunks', () => {
    const disk = simDisk();
    const store = SnapshotStore.open({ disk, dir, limits: { snapshotReadChunkBytes: 512 } });
    const snap = snapshot({ index: 42, term: 3, voters: ['a', 'b', 'c'], dataBytes: 5000 });
    store.save({ groupId: 7, snapshot: snap });
    expect(store.list(7).map((s) => s.index)).toEqual([42]);
    expect(store.groupIds()).toEqual([7]);
    expect(store.load({ groupId: 7, index: 42 })).toEqual(snap);
  });

  it('is durable once save returns, and a crash mid-save leaves no partial snapshot', () => {
    // save syncs twice: the temporary file, then the directory after the rename.
    for (let crashAt = 0; crashAt < 2; crashAt++) {
      const disk = simDisk(crashAt + 1);
      const store = SnapshotStore.open({ disk, dir });
      store.save({ groupId: 1, snapshot: snapshot({ index: 5, term: 1 }) });
      disk.scheduleCrash({ afterSyncs: crashAt });
      expect(() =>
        store.save({ groupId: 1, snapshot: snapshot({ index: 9, term: 1, dataBytes: 300 }) }),
      ).toThrow();
      disk.crash({ tornWriteRate: 1 });
      const reopened = SnapshotStore.open({ disk, dir });
      expect(reopened.load({ groupId: 1, index: 5 })).toEqual(snapshot({ index: 5, term: 1 }));
      for (const stored of reopened.list(1))
        expect(() => reopened.load({ groupId: 1, index: stored.index })).not.toThrow();
      expect(disk.readdir(dir).some((name) => name.endsWith('.tmp'))).toBe(false);
    }
  });

  it('keeps the newest snapshotsRetainedMax per group', () => {
    const disk = simDisk();
    const store = SnapshotStore.open({ disk, dir, limits: { snapshotsRetainedMax: 2 } });
    for (const index of [10, 20, 30, 40]) {
      store.save({ groupId: 1, snapshot: snapshot({ index, term: 1 }) });
      store.prune({ groupId: 1, keepIndex: index });
    }
    store.save({ groupId: 2, snapshot: snapshot({ index: 5, term: 1 }) });
    expect(store.list(1).map((s) => s.index)).toEqual([40, 30]);
    expect(store.list(2).map((s) => s.index)).toEqual([5]);
  });

  it('detects a flipped bit in the data, in the header, and a truncated file', () => {
    const disk = simDisk();
    const store = SnapshotStore.open({ disk, dir });
    const path = `${dir}/${snapshotFileName({ groupId: 1, index: 9 })}`;
    store.save({ groupId: 1, snapshot: snapshot({ index: 9, term: 2, dataBytes: 3000 }) });
    const size = disk.fileBytes(path).length;
    disk.corrupt({ path, offset: size - 100 });
    expect(() => store.load({ groupId: 1, index: 9 })).toThrow(
      expect.objectContaining({
        code: 'SNAPSHOT_DATA_CHECKSUM_MISMATCH',
        file: snapshotFileName({ groupId: 1, index: 9 }),
      }),
    );
    disk.corrupt({ path, offset: size - 100 });
    disk.corrupt({ path, offset: 30 });
    expect(() => store.load({ groupId: 1, index: 9 })).toThrow(SnapshotCorruptionError);
    disk.corrupt({ path, offset: 30 });
    const f = disk.open(path, { mode: 'existing' });
    f.truncate(size - 1);
    f.sync();
    expect(() => store.load({ groupId: 1, index: 9 })).toThrow(
      expect.objectContaining({ code: 'SNAPSHOT_LENGTH_MISMATCH' }),
    );
  });

  it('refuses a snapshot over snapshotBytesMax', () => {
    const store = SnapshotStore.open({ disk: simDisk(), dir, limits: { snapshotBytesMax: 100 } });
    expect(() =>
      store.save({ groupId: 1, snapshot: snapshot({ index: 1, term: 1, dataBytes: 101 }) }),
    ).toThrow(StorageLimitError);
  });
});

describe('DurableStorage', () => {
  const open = (disk: ReturnType<typeof simDisk>) =>
    DurableStorage.open({ disk, dir: '/data/node', limits: { snapshotsRetainedMax: 2 } });
  const snapDir = '/data/node/snap';

  function populate(disk: ReturnType<typeof simDisk>): void {
    const storage = open(disk);
    storage.persist([
      { groupId: 1, entries: entries({ from: 1, count: 30, term: 1 }), hardState: hs(1, 30), snapshot: null },
    ]);
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 10, term: 1 }) });
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 20, term: 1 }) });
    // By default the WAL keeps entries after the older retained snapshot (10), so either can be used.
    expect(storage.group(1).firstIndex()).toBe(11);
    storage.close();
  }

  it('recovers a group with its snapshot attached', () => {
    const disk = simDisk();
    populate(disk);
    const storage = open(disk);
    expect(storage.group(1).snapshot()).toEqual(snapshot({ index: 20, term: 1 }));
    expect(storage.group(1).lastIndex()).toBe(30);
    expect(storage.recovery).toEqual([]);
  });

  it('falls back to the previous snapshot when the newest is corrupt and the WAL still has the entries', () => {
    const disk = simDisk();
    populate(disk);
    const path = `${snapDir}/${snapshotFileName({ groupId: 1, index: 20 })}`;
    disk.corrupt({ path, offset: disk.fileBytes(path).length - 1 });
    const storage = open(disk);
    const log = storage.group(1);
    expect(log.snapshot().metadata.index).toBe(10);
    expect(log.firstIndex()).toBe(11);
    expect(log.entries({ lo: 11, hi: 31, bytesMax: 1 << 20 })).toHaveLength(20);
    expect(storage.recovery).toEqual([
      expect.objectContaining({
        groupId: 1,
        fellBackFrom: 20,
        usedIndex: 10,
        quarantined: [expect.stringMatching(/corrupt$/)],
      }),
    ]);
  });

  it('fails clearly when the newest snapshot is corrupt and the WAL no longer has the entries', () => {
    const disk = simDisk();
    const limits = { snapshotsRetainedMax: 2, segmentBytesMax: 1024 };
    const storage = DurableStorage.open({ disk, dir: '/data/node', limits });
    for (let i = 1; i <= 30; i++) {
      storage.persist([
        {
          groupId: 1,
          entries: entries({ from: i, count: 1, term: 1, dataBytes: 200 }),
          hardState: hs(1, i),
          snapshot: null,
        },
      ]);
    }
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 10, term: 1 }), compactThroughIndex: 10 });
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 20, term: 1 }), compactThroughIndex: 20 });
    storage.close();
    const path = `${snapDir}/${snapshotFileName({ groupId: 1, index: 20 })}`;
    disk.corrupt({ path, offset: 40 });
    expect(() => DurableStorage.open({ disk, dir: '/data/node', limits })).toThrow(SnapshotUnavailableError);
  });

  it('removes a snapshot saved just before a crash that the WAL never recorded', () => {
    const disk = simDisk();
    populate(disk);
    const storage = open(disk);
    storage.snapshots.save({ groupId: 1, snapshot: snapshot({ index: 25, term: 1 }) });
    storage.close();
    const reopened = open(disk);
    expect(reopened.snapshots.list(1).map((s) => s.index)).toEqual([20, 10]);
    expect(reopened.recovery[0]?.orphansRemoved).toBe(1);
  });

  it('persists an installed snapshot before the WAL records it', () => {
    const disk = simDisk();
    const storage = open(disk);
    storage.persist([
      {
        groupId: 3,
        entries: entries({ from: 51, count: 2, term: 4 }),
        hardState: hs(4, 50),
        snapshot: snapshot({ index: 50, term: 4 }),
      },
    ]);
    storage.close();
    const log = open(disk).group(3);
    expect(log.snapshot().metadata.index).toBe(50);
    expect(log.lastIndex()).toBe(52);
  });
});
