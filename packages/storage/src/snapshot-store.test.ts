import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Snapshot } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { type Disk, type DiskFile, NodeDisk } from './disk.js';
import { DurableStorage, snapshotReadsInFlightMax } from './durable-storage.js';
import { SnapshotCorruptionError, SnapshotUnavailableError, StorageLimitError } from './errors.js';
import { SnapshotStore, snapshotFileName } from './snapshot-store.js';
import { entries, hs, simDisk, snapshot } from './testing/fixtures.js';

const dir = '/data/snap';

interface ReadRecord {
  readonly path: string;
  readonly offset: number;
  readonly result: Uint8Array;
}

/**
 * A disk that records every read (path, offset, the array returned), otherwise the inner
 * disk. With `readAsync`, its files also read on "the thread pool": each such read waits in
 * `pending` until the test releases it.
 */
function recordingDisk(
  inner: Disk,
  options: { readAsync?: boolean } = {},
): { disk: Disk; reads: ReadRecord[]; pending: (() => void)[] } {
  const reads: ReadRecord[] = [];
  const pending: (() => void)[] = [];
  const read = (file: DiskFile, range: { offset: number; length: number }): Uint8Array => {
    const result = file.read(range);
    reads.push({ path: file.path, offset: range.offset, result });
    return result;
  };
  const readAsync = (file: DiskFile, range: { offset: number; length: number }): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      pending.push(() => {
        try {
          resolve(read(file, range));
        } catch (error) {
          reject(error);
        }
      });
    });
  const wrapFile = (file: DiskFile): DiskFile => ({
    path: file.path,
    size: () => file.size(),
    read: (range) => read(file, range),
    ...(options.readAsync === true ? { readAsync: (range) => readAsync(file, range) } : {}),
    append: (data) => file.append(data),
    writeAt: (options) => file.writeAt(options),
    truncate: (size) => file.truncate(size),
    datasync: () => file.datasync(),
    sync: () => file.sync(),
    close: () => file.close(),
  });
  const disk: Disk = {
    open: (path, options) => wrapFile(inner.open(path, options)),
    exists: (path) => inner.exists(path),
    readdir: (d) => inner.readdir(d),
    mkdir: (d) => inner.mkdir(d),
    rename: (options) => inner.rename(options),
    unlink: (path) => inner.unlink(path),
    syncDir: (d) => inner.syncDir(d),
  };
  return { disk, reads, pending };
}

/** Event-loop turns `settle` allows: each read takes a few; a hang fails instead of spinning. */
const settleTurnsMax = 1000;

/** Release every pending async read, and those they lead to, until `promise` settles. */
/** Entries 1..count of group 1, one 200-byte entry per write: with small segments, many segments. */
function persistOneByOne(storage: DurableStorage, count: number): void {
  for (let i = 1; i <= count; i++) {
    const write = { groupId: 1, entries: entries({ from: i, count: 1, term: 1, dataBytes: 200 }) };
    storage.persist([{ ...write, hardState: hs(1, i), snapshot: null }]);
  }
}

/** Metadata equal, data byte-equal: a deep toEqual of MiBs of typed array takes seconds. */
function expectSameSnapshot(actual: Snapshot, expected: Snapshot): void {
  expect(actual.metadata).toEqual(expected.metadata);
  expect(Buffer.from(actual.data).equals(Buffer.from(expected.data))).toBe(true);
}

async function settle<T>(promise: Promise<T>, pending: (() => void)[]): Promise<T> {
  let done = false;
  const markDone = () => {
    done = true;
  };
  promise.then(markDone, markDone);
  for (let turn = 0; !done; turn++) {
    if (turn >= settleTurnsMax) throw new Error(`not settled after ${settleTurnsMax} turns`);
    for (const release of pending.splice(0)) release();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return promise;
}

/** Bytes read at or after `from` in files whose path ends with `suffix`. */
function bytesReadFrom(reads: readonly ReadRecord[], suffix: string, from: number): number {
  return reads
    .filter((r) => r.path.endsWith(suffix) && r.offset >= from)
    .reduce((n, r) => n + r.result.byteLength, 0);
}

describe('SnapshotStore', () => {
  it('round-trips a snapshot', () => {
    const disk = simDisk();
    const store = SnapshotStore.open({ disk, dir });
    const snap = snapshot({ index: 42, term: 3, voters: ['a', 'b', 'c'], dataBytes: 5000 });
    store.save({ groupId: 7, snapshot: snap });
    expect(store.list(7).map((s) => s.index)).toEqual([42]);
    expect(store.groupIds()).toEqual([7]);
    expect(store.load({ groupId: 7, index: 42 })).toEqual(snap);
  });

  it('reads the data once, into the very buffer it returns, and verifies it before returning', () => {
    const inner = simDisk();
    const { disk, reads } = recordingDisk(inner);
    const store = SnapshotStore.open({ disk, dir });
    const snap = snapshot({ index: 42, term: 3, dataBytes: 5000 });
    store.save({ groupId: 7, snapshot: snap });
    const name = snapshotFileName({ groupId: 7, index: 42 });
    const headerBytes = inner.fileBytes(`${dir}/${name}`).length - 5000;
    const loaded = store.load({ groupId: 7, index: 42 });
    expect(loaded).toEqual(snap);
    // Every data byte crosses from the disk once, and no copy is made after that.
    expect(bytesReadFrom(reads, name, headerBytes)).toBe(5000);
    const dataReads = reads.filter((r) => r.path.endsWith(name) && r.offset >= headerBytes);
    expect(dataReads.map((r) => r.result.buffer)).toContain(loaded.data.buffer);
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

  /**
   * The same populated disk, damaged by `prepare`, opened with `open` and then with
   * `openAsync`: what each recovered (report, group 1's snapshot, the files left).
   */
  async function openBothWays(prepare: (inner: ReturnType<typeof simDisk>) => void) {
    const outcomes = [];
    for (const useAsync of [false, true]) {
      const inner = simDisk();
      populate(inner);
      prepare(inner);
      const { disk, pending } = recordingDisk(inner, { readAsync: true });
      const options = { disk, dir: '/data/node', limits: { snapshotsRetainedMax: 2 } };
      const storage = useAsync
        ? await settle(DurableStorage.openAsync(options), pending)
        : DurableStorage.open(options);
      outcomes.push({
        recovery: storage.recovery,
        snapshot: storage.group(1).snapshot(),
        files: inner.readdir(snapDir).sort(),
      });
      storage.close();
    }
    return outcomes;
  }

  it('recovers a group with its snapshot attached', () => {
    const disk = simDisk();
    populate(disk);
    const storage = open(disk);
    expect(storage.group(1).snapshot()).toEqual(snapshot({ index: 20, term: 1 }));
    expect(storage.group(1).lastIndex()).toBe(30);
    expect(storage.recovery).toEqual([]);
  });

  it('reads each snapshot file’s data once from open to the state machine’s restore', () => {
    const inner = simDisk();
    populate(inner);
    const { disk, reads } = recordingDisk(inner);
    const storage = DurableStorage.open({ disk, dir: '/data/node', limits: { snapshotsRetainedMax: 2 } });
    const name = snapshotFileName({ groupId: 1, index: 20 });
    const fileBytes = inner.fileBytes(`${snapDir}/${name}`).length;
    const dataBytes = snapshot({ index: 20, term: 1 }).data.byteLength;
    const restored = storage.group(1).snapshot();
    expect(restored).toEqual(snapshot({ index: 20, term: 1 }));
    expect(bytesReadFrom(reads, name, fileBytes - dataBytes)).toBe(dataBytes);
    // The older retained snapshot is not read at all while the newest one is sound.
    expect(reads.some((r) => r.path.endsWith(snapshotFileName({ groupId: 1, index: 10 })))).toBe(false);
  });

  it('openAsync reads every group’s snapshot at once, then recovers as open does', async () => {
    const inner = simDisk();
    const storage = open(inner);
    for (const groupId of [1, 2, 3]) {
      storage.persist([
        { groupId, entries: entries({ from: 1, count: 30, term: 1 }), hardState: hs(1, 30), snapshot: null },
      ]);
      storage.saveSnapshot({
        groupId,
        snapshot: snapshot({ index: 20 + groupId, term: 1, dataBytes: 3000 }),
      });
    }
    storage.close();
    const { disk, reads, pending } = recordingDisk(inner, { readAsync: true });
    const opening = DurableStorage.openAsync({
      disk,
      dir: '/data/node',
      limits: { snapshotsRetainedMax: 2 },
    });
    // All three data reads are in flight before any completes.
    expect(pending).toHaveLength(3);
    const reopened = await settle(opening, pending);
    for (const groupId of [1, 2, 3]) {
      const name = snapshotFileName({ groupId, index: 20 + groupId });
      const fileBytes = inner.fileBytes(`${snapDir}/${name}`).length;
      expect(reopened.group(groupId).snapshot()).toEqual(
        snapshot({ index: 20 + groupId, term: 1, dataBytes: 3000 }),
      );
      expect(bytesReadFrom(reads, name, fileBytes - 3000)).toBe(3000);
    }
    expect(reopened.recovery).toEqual([]);
  });

  it('openAsync holds at most snapshotReadsInFlightMax reads at once, and still reads every group', async () => {
    const inner = simDisk();
    const storage = open(inner);
    const groupIds = Array.from({ length: snapshotReadsInFlightMax + 3 }, (_, i) => i + 1);
    for (const groupId of groupIds) {
      storage.persist([
        { groupId, entries: entries({ from: 1, count: 30, term: 1 }), hardState: hs(1, 30), snapshot: null },
      ]);
      storage.saveSnapshot({ groupId, snapshot: snapshot({ index: 20, term: 1, dataBytes: 1000 }) });
    }
    storage.close();
    const { disk, pending } = recordingDisk(inner, { readAsync: true });
    const opening = DurableStorage.openAsync({
      disk,
      dir: '/data/node',
      limits: { snapshotsRetainedMax: 2 },
    });
    expect(pending).toHaveLength(snapshotReadsInFlightMax);
    const reopened = await settle(opening, pending);
    for (const groupId of groupIds) {
      expect(reopened.group(groupId).snapshot()).toEqual(snapshot({ index: 20, term: 1, dataBytes: 1000 }));
    }
  });

  it('openAsync falls back and quarantines exactly as open does', async () => {
    const outcomes = await openBothWays((inner) => {
      const path = `${snapDir}/${snapshotFileName({ groupId: 1, index: 20 })}`;
      inner.corrupt({ path, offset: inner.fileBytes(path).length - 1 });
    });
    expect(outcomes[0]?.recovery).toEqual([expect.objectContaining({ fellBackFrom: 20, usedIndex: 10 })]);
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('openAsync removes a newer orphan and uses the snapshot the WAL recorded, as open does', async () => {
    const outcomes = await openBothWays((inner) => {
      const storage = open(inner);
      storage.snapshots.save({ groupId: 1, snapshot: snapshot({ index: 25, term: 1 }) });
      storage.close();
    });
    expect(outcomes[0]?.snapshot).toEqual(snapshot({ index: 20, term: 1 }));
    expect(outcomes[0]?.recovery).toEqual([expect.objectContaining({ orphansRemoved: 1, usedIndex: 20 })]);
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('openAsync refuses a missing snapshot the WAL needs, as open does, and closes the WAL', async () => {
    const inner = simDisk();
    const limits = { snapshotsRetainedMax: 1, segmentBytesMax: 1024 };
    const storage = DurableStorage.open({ disk: inner, dir: '/data/node', limits });
    persistOneByOne(storage, 30);
    storage.saveSnapshot({ groupId: 1, snapshot: snapshot({ index: 20, term: 1 }), compactThroughIndex: 20 });
    storage.close();
    inner.unlink(`${snapDir}/${snapshotFileName({ groupId: 1, index: 20 })}`);
    const { disk, pending } = recordingDisk(inner, { readAsync: true });
    const options = { disk, dir: '/data/node', limits };
    await expect(settle(DurableStorage.openAsync(options), pending)).rejects.toThrow(
      SnapshotUnavailableError,
    );
    // The WAL was closed: it opens again (the same refusal, not a lock or a leaked handle).
    expect(() => DurableStorage.open(options)).toThrow(SnapshotUnavailableError);
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
    persistOneByOne(storage, 30);
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

describe('reading snapshots on the thread pool (NodeDisk)', () => {
  it('loadAsync and openAsync give the verified bytes, and refuse a damaged file as load does', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'conclave-snapshot-async-'));
    try {
      const disk = new NodeDisk();
      const probe = disk.open(path.join(root, 'probe'), { mode: 'createExclusive' });
      expect(probe.readAsync).toBeTypeOf('function');
      probe.close();
      const storage = DurableStorage.open({ disk, dir: root });
      storage.persist([
        { groupId: 2, entries: entries({ from: 1, count: 5, term: 1 }), hardState: hs(1, 5), snapshot: null },
      ]);
      const snap = snapshot({ index: 5, term: 1, dataBytes: 3 * 1024 * 1024 + 7 });
      storage.saveSnapshot({ groupId: 2, snapshot: snap });
      storage.close();
      const snapDir = path.join(root, 'snap');
      const store = SnapshotStore.open({ disk, dir: snapDir });
      expectSameSnapshot(await store.loadAsync({ groupId: 2, index: 5 }), snap);
      const reopened = await DurableStorage.openAsync({ disk, dir: root });
      expectSameSnapshot(reopened.group(2).snapshot(), snap);
      reopened.close();
      const file = path.join(snapDir, snapshotFileName({ groupId: 2, index: 5 }));
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 1;
      fs.writeFileSync(file, bytes);
      await expect(store.loadAsync({ groupId: 2, index: 5 })).rejects.toThrow(
        expect.objectContaining({ code: 'SNAPSHOT_DATA_CHECKSUM_MISMATCH' }),
      );
      expect(() => store.load({ groupId: 2, index: 5 })).toThrow(
        expect.objectContaining({ code: 'SNAPSHOT_DATA_CHECKSUM_MISMATCH' }),
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
