import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Snapshot } from '@conclave/raft';
import { afterAll, describe, expect, it } from 'vitest';
import { crcSliceBytesMax, writeNewFileDurably, writeSyncSliceBytes } from './background-write.js';
import { NodeDisk } from './disk.js';
import { DurableStorage } from './durable-storage.js';
import { SnapshotStore } from './snapshot-store.js';
import { entries, hs, simDisk, snapshot } from './testing/fixtures.js';

const nodeDir = '/data/node';
const snapDir = `${nodeDir}/snap`;

/** A node's storage with group 1 holding entries 1..30 and a snapshot at 10 (log compacted through 10). */
function populated(disk: ReturnType<typeof simDisk>): DurableStorage {
  const storage = DurableStorage.open({ disk, dir: nodeDir });
  storage.persist([
    { groupId: 1, entries: entries({ from: 1, count: 30, term: 1 }), hardState: hs(1, 30), snapshot: null },
    { groupId: 2, entries: entries({ from: 1, count: 5, term: 1 }), hardState: hs(1, 5), snapshot: null },
  ]);
  storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 10, term: 1 }), compactThroughIndex: 10 });
  return storage;
}

/** Event-loop turns (setImmediate) that run until `promise` settles. */
async function turnsUntilSettled(promise: Promise<unknown>): Promise<number> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  let turns = 0;
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    turns++;
  }
  return turns;
}

const tempFiles = (names: readonly string[]) => names.filter((name) => name.endsWith('.tmp'));

/** Compared as buffers: a deep equality over megabytes of array elements takes seconds. */
function expectSameSnapshot(actual: Snapshot, expected: Snapshot): void {
  expect(actual.metadata).toEqual(expected.metadata);
  expect(Buffer.from(actual.data).equals(Buffer.from(expected.data))).toBe(true);
}

describe('snapshots saved in the background', () => {
  it('record the snapshot and compact the log only once the file is durable and in place', async () => {
    const disk = simDisk();
    const storage = populated(disk);
    const log = storage.group(1);
    const saving = storage.saveSnapshotInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 20, term: 1, dataBytes: 3 * crcSliceBytesMax }),
      compactThroughIndex: 15,
    });
    // Nothing changed in this turn: the WAL still points at 10, and no entry was dropped.
    expect(log.snapshotMetadata().index).toBe(10);
    expect(log.firstIndex()).toBe(11);
    expect(storage.snapshots.list(1).map((s) => s.index)).toEqual([10]);
    expect(await saving).toBe(true);
    expect(log.snapshotMetadata().index).toBe(20);
    expect(log.firstIndex()).toBe(16);
    storage.close();
    const reopened = DurableStorage.open({ disk, dir: nodeDir });
    expectSameSnapshot(
      reopened.group(1).snapshot(),
      snapshot({ index: 20, term: 1, dataBytes: 3 * crcSliceBytesMax }),
    );
    expect(reopened.recovery).toEqual([]);
    reopened.close();
  });

  it('checksum a large snapshot across event-loop turns instead of in one', async () => {
    const disk = simDisk();
    const storage = populated(disk);
    const saving = storage.saveSnapshotInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 20, term: 1, dataBytes: 8 * crcSliceBytesMax }),
    });
    // One slice per turn: other work runs between them (7 yields for 8 slices).
    expect(await turnsUntilSettled(saving)).toBeGreaterThanOrEqual(7);
    expect(await saving).toBe(true);
    storage.close();
  });

  it('allow one write in flight per group, and one per group at once', async () => {
    const disk = simDisk();
    const storage = populated(disk);
    // Two slices: the write yields to the event loop at least once, so it is still in flight below.
    const first = storage.saveSnapshotInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 20, term: 1, dataBytes: 2 * crcSliceBytesMax }),
    });
    await expect(
      storage.saveSnapshotInBackground({ groupId: 1, snapshot: snapshot({ index: 25, term: 1 }) }),
    ).rejects.toThrow(/already in flight/);
    expect(() => storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 25, term: 1 }) })).toThrow(
      /written in the background/,
    );
    const other = storage.saveSnapshotInBackground({ groupId: 2, snapshot: snapshot({ index: 5, term: 1 }) });
    expect(await Promise.all([first, other])).toEqual([true, true]);
    // Settled: the group may save again.
    expect(
      await storage.saveSnapshotInBackground({ groupId: 1, snapshot: snapshot({ index: 25, term: 1 }) }),
    ).toBe(true);
    storage.close();
  });

  it('are dropped when a newer snapshot was installed meanwhile, leaving that one in place', async () => {
    const disk = simDisk();
    const storage = populated(disk);
    const saving = storage.saveSnapshotInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 20, term: 1, dataBytes: 2 * crcSliceBytesMax }),
    });
    storage.persist([
      { groupId: 1, entries: [], hardState: hs(2, 40), snapshot: snapshot({ index: 40, term: 2 }) },
    ]);
    expect(await saving).toBe(false);
    expect(storage.group(1).snapshotMetadata().index).toBe(40);
    expect(storage.snapshots.list(1).map((s) => s.index)).toEqual([40, 10]);
    expect(tempFiles(disk.readdir(snapDir))).toEqual([]);
    storage.close();
  });

  it('are abandoned by close: the previous snapshot stays the one in use, and nothing is left behind', async () => {
    const disk = simDisk();
    const storage = populated(disk);
    const saving = storage.saveSnapshotInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 20, term: 1, dataBytes: 2 * crcSliceBytesMax }),
      compactThroughIndex: 20,
    });
    storage.close();
    expect(await saving).toBe(false);
    const reopened = DurableStorage.open({ disk, dir: nodeDir });
    expect(reopened.group(1).snapshot().metadata.index).toBe(10);
    expect(reopened.group(1).firstIndex()).toBe(11);
    expect(reopened.snapshots.list(1).map((s) => s.index)).toEqual([10]);
    expect(tempFiles(disk.readdir(snapDir))).toEqual([]);
    reopened.close();
  });

  it('leave the previous snapshot valid when the power fails while the file is synced', async () => {
    const disk = simDisk(7);
    const storage = populated(disk);
    disk.scheduleCrash({ afterSyncs: 0 });
    await expect(
      storage.saveSnapshotInBackground({
        groupId: 1,
        snapshot: snapshot({ index: 20, term: 1, dataBytes: 5000 }),
      }),
    ).rejects.toThrow();
    disk.crash({ tornWriteRate: 1 });
    const reopened = DurableStorage.open({ disk, dir: nodeDir });
    expect(reopened.group(1).snapshot()).toEqual(snapshot({ index: 10, term: 1 }));
    expect(reopened.group(1).lastIndex()).toBe(30);
    expect(tempFiles(disk.readdir(snapDir))).toEqual([]);
    reopened.close();
  });
});

describe('snapshots saved in the background on the real disk', () => {
  const root = mkdtempSync(join(tmpdir(), 'conclave-bg-snap-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const disk = new NodeDisk();

  it('write through fs/promises while the event loop turns, then recover from disk', async () => {
    const dir = join(root, 'saved');
    const storage = DurableStorage.open({ disk, dir });
    storage.persist([
      { groupId: 5, entries: entries({ from: 1, count: 10, term: 2 }), hardState: hs(2, 10), snapshot: null },
    ]);
    const big = snapshot({ index: 8, term: 2, dataBytes: 4 * crcSliceBytesMax + 17 });
    const saving = storage.saveSnapshotInBackground({ groupId: 5, snapshot: big });
    expect(await turnsUntilSettled(saving)).toBeGreaterThanOrEqual(4);
    expect(await saving).toBe(true);
    expect(tempFiles(readdirSync(join(dir, 'snap')))).toEqual([]);
    storage.close();
    const reopened = DurableStorage.open({ disk, dir });
    expectSameSnapshot(reopened.group(5).snapshot(), big);
    reopened.close();
  });

  it('abandoned at close, leave the previous snapshot in use and no file behind after a restart', async () => {
    const dir = join(root, 'abandoned');
    const storage = DurableStorage.open({ disk, dir });
    storage.persist([
      { groupId: 5, entries: entries({ from: 1, count: 10, term: 2 }), hardState: hs(2, 10), snapshot: null },
    ]);
    storage.saveSnapshot({ groupId: 5, snapshot: snapshot({ index: 4, term: 2 }) });
    const saving = storage.saveSnapshotInBackground({
      groupId: 5,
      snapshot: snapshot({ index: 8, term: 2, dataBytes: 2 * crcSliceBytesMax }),
    });
    storage.close();
    // A restart while the abandoned write may still be running: it never reaches the WAL.
    const reopened = DurableStorage.open({ disk, dir });
    expect(reopened.group(5).snapshot().metadata.index).toBe(4);
    expect(await saving).toBe(false);
    expect(tempFiles(readdirSync(join(dir, 'snap')))).toEqual([]);
    expect(reopened.snapshots.list(5).map((s) => s.index)).toEqual([4]);
    reopened.close();
  });

  it('store the same bytes as the synchronous save', async () => {
    const dir = join(root, 'same');
    const store = SnapshotStore.open({ disk, dir });
    const snap = snapshot({ index: 3, term: 1, dataBytes: crcSliceBytesMax + 5 });
    const prepared = await store.prepareInBackground({ groupId: 1, snapshot: snap });
    prepared.publish();
    expectSameSnapshot(store.load({ groupId: 1, index: 3 }), snap);
    const discarded = await store.prepareInBackground({
      groupId: 1,
      snapshot: snapshot({ index: 4, term: 1 }),
    });
    discarded.discard();
    expect(readdirSync(dir)).toEqual([store.list(1)[0]?.file]);
  });
});

describe('writeNewFileDurably on the real disk', () => {
  it('writes parts larger than the sync slice back to back, byte for byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-bgwrite-'));
    try {
      const path = join(dir, 'big');
      // Parts that straddle the 8 MiB sync slices at odd offsets.
      const parts = [3, writeSyncSliceBytes + 5, 2 * writeSyncSliceBytes - 7].map((length, i) =>
        new Uint8Array(length).map((_, j) => (i * 31 + j) % 251),
      );
      await writeNewFileDurably({ disk: new NodeDisk(), path, parts });
      expect(Buffer.compare(readFileSync(path), Buffer.concat(parts))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
