import type { Snapshot } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { DurableStorage } from './durable-storage.js';
import { DiskError, SnapshotCorruptionError } from './errors.js';
import { snapshotFileName } from './snapshot-store.js';
import { entries, hs, simDisk, snapshot } from './testing/fixtures.js';

const nodeDir = '/data/node';

/** Group 1 holds entries 1..30, committed. */
function opened(disk: ReturnType<typeof simDisk>): DurableStorage {
  const storage = DurableStorage.open({ disk, dir: nodeDir });
  storage.persist([
    { groupId: 1, entries: entries({ from: 1, count: 30, term: 1 }), hardState: hs(1, 30), snapshot: null },
  ]);
  return storage;
}

function expectSameSnapshot(actual: Snapshot, expected: Snapshot): void {
  expect(actual.metadata).toEqual(expected.metadata);
  expect(Buffer.from(actual.data).equals(Buffer.from(expected.data))).toBe(true);
}

function snapPath(options: { groupId: number; index: number }): string {
  return `${nodeDir}/snap/${snapshotFileName(options)}`;
}

describe('snapshot bytes stay on disk, not in memory', () => {
  it('after a save, the log drops the bytes and loads identical ones from the file on each request', () => {
    const storage = opened(simDisk());
    const saved = snapshot({ index: 20, term: 1, dataBytes: 4096 });
    storage.saveSnapshot({ groupId: 1, snapshot: saved });
    const log = storage.group(1);
    expect(log.hasSnapshotData()).toBe(false);
    expectSameSnapshot(log.snapshot(), saved);
    // Not cached: the caller holds the bytes while it needs them.
    expect(log.hasSnapshotData()).toBe(false);
    expectSameSnapshot(log.snapshot(), saved);
    storage.close();
  });

  it('after a background save, the log drops the bytes', async () => {
    const storage = opened(simDisk());
    const saved = snapshot({ index: 20, term: 1, dataBytes: 4096 });
    expect(await storage.saveSnapshotInBackground({ groupId: 1, snapshot: saved })).toBe(true);
    const log = storage.group(1);
    expect(log.hasSnapshotData()).toBe(false);
    expectSameSnapshot(log.snapshot(), saved);
    storage.close();
  });

  it('after installing a snapshot from the leader, the log drops the bytes', () => {
    const storage = opened(simDisk());
    const installed = snapshot({ index: 50, term: 2, dataBytes: 4096 });
    storage.persist([{ groupId: 1, entries: [], hardState: hs(2, 50), snapshot: installed }]);
    const log = storage.group(1);
    expect(log.snapshotMetadata().index).toBe(50);
    expect(log.hasSnapshotData()).toBe(false);
    expectSameSnapshot(log.snapshot(), installed);
    storage.close();
  });

  it('a group created by an install (never asked for before) also drops the bytes', () => {
    const storage = opened(simDisk());
    const installed = snapshot({ index: 7, term: 3 });
    storage.persist([{ groupId: 4, entries: [], hardState: hs(3, 7), snapshot: installed }]);
    expect(storage.wal.group(4).hasSnapshotData()).toBe(false);
    expectSameSnapshot(storage.group(4).snapshot(), installed);
    storage.close();
  });

  it('after a restart, the bytes recovery verified are handed out once (the restore), then loaded', () => {
    const disk = simDisk();
    const first = opened(disk);
    const saved = snapshot({ index: 20, term: 1, dataBytes: 4096 });
    first.saveSnapshot({ groupId: 1, snapshot: saved });
    first.close();
    const storage = DurableStorage.open({ disk, dir: nodeDir });
    const log = storage.group(1);
    expect(log.hasSnapshotData()).toBe(true);
    expectSameSnapshot(log.snapshot(), saved);
    expect(log.hasSnapshotData()).toBe(false);
    expectSameSnapshot(log.snapshot(), saved);
    storage.close();
  });

  it('the bootstrap snapshot (index 0) has no file and keeps its empty bytes', () => {
    const storage = DurableStorage.open({ disk: simDisk(), dir: nodeDir });
    const bootstrap = snapshot({ index: 0, term: 0, dataBytes: 0 });
    storage.persist([{ groupId: 1, entries: [], hardState: null, snapshot: bootstrap }]);
    const log = storage.group(1);
    expectSameSnapshot(log.snapshot(), bootstrap);
    expect(log.hasSnapshotData()).toBe(true);
    storage.close();
  });

  it('a snapshot file damaged after the save fails the load with a typed error, never other bytes', () => {
    const disk = simDisk();
    const storage = opened(disk);
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 20, term: 1, dataBytes: 4096 }) });
    const path = snapPath({ groupId: 1, index: 20 });
    disk.corrupt({ path, offset: disk.fileBytes(path).length - 100 });
    expect(() => storage.group(1).snapshot()).toThrow(SnapshotCorruptionError);
    storage.close();
  });

  it('a snapshot file gone after the save fails the load with a DiskError (ENOENT)', () => {
    const disk = simDisk();
    const storage = opened(disk);
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 20, term: 1 }) });
    disk.unlink(snapPath({ groupId: 1, index: 20 }));
    let thrown: unknown = null;
    try {
      storage.group(1).snapshot();
    } catch (error) {
      thrown = error;
    }
    expect(thrown instanceof DiskError && thrown.code).toBe('ENOENT');
    storage.close();
  });
});

describe('persistAsync', () => {
  it('installs a snapshot from the leader off the loop: its file is in place and recorded once it resolves', async () => {
    const disk = simDisk(4);
    const storage = opened(disk);
    const installed = snapshot({ index: 50, term: 2, dataBytes: 8192 });
    const durable = storage.persistAsync([
      {
        groupId: 1,
        entries: entries({ from: 51, count: 3, term: 2 }),
        hardState: hs(2, 53),
        snapshot: installed,
      },
    ]);
    // Nothing of the install is recorded before the promise resolves.
    expect(storage.group(1).snapshotMetadata().index).toBe(0);
    await durable;
    const log = storage.group(1);
    expect(log.snapshotMetadata().index).toBe(50);
    expect(log.lastIndex()).toBe(53);
    expect(log.hasSnapshotData()).toBe(false);
    expect(disk.exists(snapPath({ groupId: 1, index: 50 }))).toBe(true);
    storage.close();
    disk.crash({ tornWriteRate: 1 });
    const reopened = DurableStorage.open({ disk, dir: nodeDir });
    expect(reopened.group(1).snapshotMetadata().index).toBe(50);
    expectSameSnapshot(reopened.group(1).snapshot(), installed);
    expect(reopened.group(1).lastIndex()).toBe(53);
  });
});
