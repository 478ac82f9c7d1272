import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeDisk } from './disk.js';
import { DurableStorage } from './durable-storage.js';
import { DiskError, WalCorruptionError } from './errors.js';
import { entries, hs, snapshot, summarizeWal } from './testing/fixtures.js';
import { segmentFileName } from './wal/format.js';
import { Wal } from './wal/wal.js';

describe('on the real file system', () => {
  let root = '';
  const disk = new NodeDisk();

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'conclave-storage-test-'));
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('NodeDisk does what the Disk interface says', () => {
    const dir = path.join(root, 'a/b');
    disk.mkdir(dir);
    disk.mkdir(dir);
    const file = disk.open(`${dir}/f`, { mode: 'createExclusive' });
    file.append(Uint8Array.from([1, 2, 3]));
    file.writeAt({ offset: 5, data: Uint8Array.from([9]) });
    expect(file.size()).toBe(6);
    expect([...file.read({ offset: 0, length: 100 })]).toEqual([1, 2, 3, 0, 0, 9]);
    file.datasync();
    file.truncate(2);
    file.sync();
    expect(file.size()).toBe(2);
    file.close();
    expect(() => disk.open(`${dir}/f`, { mode: 'createExclusive' })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(() => disk.open(`${dir}/missing`, { mode: 'existing' })).toThrow(DiskError);
    disk.rename({ from: `${dir}/f`, to: `${dir}/g` });
    disk.syncDir(dir);
    expect(disk.readdir(dir)).toEqual(['g']);
    expect(disk.open(`${dir}/g`, { mode: 'existing' }).size()).toBe(2);
    disk.unlink(`${dir}/g`);
    expect(disk.exists(`${dir}/g`)).toBe(false);
  });

  it('the WAL round-trips, rotates and deletes segments on disk, off the event loop', async () => {
    const dir = path.join(root, 'wal');
    const limits = { segmentBytesMax: 4096 };
    const wal = Wal.open({ disk, dir, limits });
    for (let i = 0; i < 100; i++) {
      wal.appendBatch([
        {
          groupId: 1,
          entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 200 }),
          hardState: hs(1, i + 1),
          snapshot: null,
        },
        {
          groupId: 2,
          entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 10 }),
          hardState: null,
          snapshot: null,
        },
      ]);
    }
    expect(wal.stats().segmentCount).toBeGreaterThan(3);
    wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 90, term: 1 }) });
    wal.recordSnapshot({ groupId: 2, snapshot: snapshot({ index: 90, term: 1 }) });
    expect(wal.stats().firstSegmentSeq).toBeGreaterThan(1);
    await wal.unlinksSettled();
    expect(fs.existsSync(path.join(dir, segmentFileName(1)))).toBe(false);
    const before = summarizeWal(wal);
    wal.close();
    expect(summarizeWal(Wal.open({ disk, dir, limits }))).toEqual(before);
  });

  it('a segment whose background unlink never ran is deleted at the next start', () => {
    const dir = path.join(root, 'wal');
    const limits = { segmentBytesMax: 4096 };
    // The unlinks are lost, as if the process died before the thread pool ran them.
    const forgetful = Object.assign(Object.create(disk) as NodeDisk, {
      unlinkAsync: () => Promise.resolve(),
    });
    const wal = Wal.open({ disk: forgetful, dir, limits });
    for (let i = 0; i < 60; i++) {
      const e = entries({ from: i + 1, count: 1, term: 1, dataBytes: 200 });
      wal.appendBatch([{ groupId: 1, entries: e, hardState: hs(1, i + 1), snapshot: null }]);
    }
    wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 50, term: 1 }) });
    expect(wal.stats().firstSegmentSeq).toBeGreaterThan(1);
    expect(fs.existsSync(path.join(dir, segmentFileName(1)))).toBe(true);
    const before = summarizeWal(wal);
    wal.close();
    const reopened = Wal.open({ disk, dir, limits });
    expect(fs.existsSync(path.join(dir, segmentFileName(1)))).toBe(false);
    expect(summarizeWal(reopened)).toEqual(before);
  });

  it('cuts a torn tail and refuses a corrupt sealed segment', () => {
    const dir = path.join(root, 'wal');
    const limits = { segmentBytesMax: 2048 };
    const wal = Wal.open({ disk, dir, limits });
    for (let i = 0; i < 20; i++) {
      wal.appendBatch([
        {
          groupId: 1,
          entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 300 }),
          hardState: null,
          snapshot: null,
        },
      ]);
    }
    const last = wal.stats().lastSegmentSeq;
    wal.close();
    // A torn last write: half of a frame appended to the last segment.
    const tail = path.join(dir, segmentFileName(last));
    const fullSize = fs.statSync(tail).size;
    fs.appendFileSync(tail, Buffer.alloc(100, 0x43));
    const recovered = Wal.open({ disk, dir, limits });
    expect(recovered.recovery.tornTail).toMatchObject({ offset: fullSize, bytesCut: 100 });
    expect(fs.statSync(tail).size).toBe(fullSize);
    expect(recovered.group(1).lastIndex()).toBe(20);
    recovered.close();
    // A flipped byte in the first segment's first frame.
    const first = path.join(dir, segmentFileName(1));
    const fd = fs.openSync(first, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, 100);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, 100);
    fs.closeSync(fd);
    expect(() => Wal.open({ disk, dir, limits })).toThrow(WalCorruptionError);
  });

  it('DurableStorage recovers snapshots and logs from disk', () => {
    const dir = path.join(root, 'node');
    const storage = DurableStorage.open({ disk, dir });
    storage.persist([
      { groupId: 5, entries: entries({ from: 1, count: 10, term: 2 }), hardState: hs(2, 10), snapshot: null },
    ]);
    storage.saveSnapshot({ groupId: 5, snapshot: snapshot({ index: 8, term: 2, dataBytes: 100_000 }) });
    storage.close();
    const reopened = DurableStorage.open({ disk, dir });
    expect(reopened.group(5).snapshot()).toEqual(snapshot({ index: 8, term: 2, dataBytes: 100_000 }));
    expect(reopened.group(5).hardState()).toEqual(hs(2, 10));
    reopened.close();
  });
});
