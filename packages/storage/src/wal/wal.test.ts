import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { DiskSyncError, StorageLimitError, WalCorruptionError, WalFailedError } from '../errors.js';
import { SimulatedCrashError } from '../sim-disk.js';
import { entries, hs, openWal, simDisk, snapshot, summarizeWal, walDir } from '../testing/fixtures.js';
import { segmentFileName } from './format.js';
import { type GroupWrite, Wal } from './wal.js';

const segPath = (seq: number): string => `${walDir}/${segmentFileName(seq)}`;

function write(groupId: number, fields: Partial<Omit<GroupWrite, 'groupId'>>): GroupWrite {
  return { groupId, entries: [], hardState: null, snapshot: null, ...fields };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('Wal', () => {
  it('round-trips batches of many groups through a restart', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    for (let round = 0; round < 5; round++) {
      const batch: GroupWrite[] = [];
      for (let g = 1; g <= 40; g++) {
        batch.push(
          write(g, {
            entries: entries({ from: round * 3 + 1, count: 3, term: 1 + round, dataBytes: g }),
            hardState: hs(1 + round, round * 3, `n${g % 3}`),
          }),
        );
      }
      wal.appendBatch(batch);
    }
    const before = summarizeWal(wal);
    expect(wal.group(7).lastIndex()).toBe(15);
    expect(wal.group(7).entries({ lo: 1, hi: 16, bytesMax: 1 << 20 })).toHaveLength(15);
    wal.close();
    const reopened = openWal(disk);
    expect(summarizeWal(reopened)).toEqual(before);
    expect(reopened.recovery.tornTail).toBeNull();
  });

  it('group commit: a batch of many groups costs one fdatasync', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    const syncs = disk.syncCount;
    wal.appendBatch(
      Array.from({ length: 100 }, (_, g) =>
        write(g, { entries: entries({ from: 1, count: 2, term: 1 }), hardState: hs(1, 0) }),
      ),
    );
    expect(disk.syncCount - syncs).toBe(1);
  });

  it('replaces a conflicting suffix, and replay reproduces it', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    wal.appendBatch([write(1, { entries: entries({ from: 1, count: 10, term: 1 }), hardState: hs(1, 3) })]);
    wal.appendBatch([write(1, { entries: entries({ from: 6, count: 2, term: 2 }), hardState: hs(2, 3) })]);
    const log = wal.group(1);
    expect(log.lastIndex()).toBe(7);
    expect(log.term(5)).toBe(1);
    expect(log.term(6)).toBe(2);
    wal.appendBatch([write(1, { entries: entries({ from: 8, count: 1, term: 2 }) })]);
    const before = summarizeWal(wal);
    wal.close();
    expect(summarizeWal(openWal(disk))).toEqual(before);
  });

  it('installs a snapshot (the log restarts after it) and bootstraps a group at index 0', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    wal.appendBatch([write(1, { snapshot: snapshot({ index: 0, term: 0, voters: ['a', 'b'] }) })]);
    expect(wal.group(1).initialState().confState.voters).toEqual(['a', 'b']);
    wal.appendBatch([write(1, { entries: entries({ from: 1, count: 5, term: 1 }) })]);
    wal.appendBatch([
      write(1, {
        snapshot: snapshot({ index: 20, term: 3 }),
        entries: entries({ from: 21, count: 2, term: 3 }),
      }),
    ]);
    const log = wal.group(1);
    expect(log.firstIndex()).toBe(21);
    expect(log.term(20)).toBe(3);
    expect(log.snapshot().data.length).toBe(16);
    const before = summarizeWal(wal);
    wal.close();
    expect(summarizeWal(openWal(disk))).toEqual(before);
  });

  it('refuses writes that break the log (gaps, overwriting compacted entries)', () => {
    const wal = openWal(simDisk());
    wal.appendBatch([write(1, { entries: entries({ from: 1, count: 3, term: 1 }) })]);
    expect(() => wal.appendBatch([write(1, { entries: entries({ from: 5, count: 1, term: 1 }) })])).toThrow(
      RaftInvariantError,
    );
  });

  it('rotates segments at segmentBytesMax and replays across them', () => {
    const disk = simDisk();
    const wal = openWal(disk, { segmentBytesMax: 2048 });
    for (let i = 0; i < 60; i++) {
      wal.appendBatch([
        write(1, {
          entries: entries({ from: i * 4 + 1, count: 4, term: 1, dataBytes: 30 }),
          hardState: hs(1, i),
        }),
      ]);
    }
    const stats = wal.stats();
    expect(stats.segmentCount).toBeGreaterThan(5);
    for (let seq = stats.firstSegmentSeq; seq <= stats.lastSegmentSeq; seq++) {
      expect(disk.fileBytes(segPath(seq)).length).toBeLessThanOrEqual(2048);
    }
    const before = summarizeWal(wal);
    wal.close();
    expect(summarizeWal(openWal(disk, { segmentBytesMax: 2048 }))).toEqual(before);
  });

  it('an unsynced commit-only write may be lost in a crash, never what was synced before it', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const disk = simDisk(seed);
      const wal = openWal(disk);
      wal.appendBatch([write(1, { entries: entries({ from: 1, count: 4, term: 1 }), hardState: hs(1, 2) })]);
      const synced = summarizeWal(wal);
      const syncs = disk.syncCount;
      wal.appendBatch([write(1, { hardState: hs(1, 4) })], { sync: false });
      expect(disk.syncCount).toBe(syncs);
      expect(wal.group(1).hardState().commit).toBe(4);
      disk.crash({ tornWriteRate: 0.8, bitFlipRate: 0.3 });
      const recovered = summarizeWal(openWal(disk)).get(1);
      expect(recovered?.entries).toEqual(synced.get(1)?.entries);
      expect([2, 4]).toContain(recovered?.hardState.commit);
    }
  });

  it('a later synced write, a rotation or a clean close makes an unsynced write durable', () => {
    const disk = simDisk(7);
    const wal = openWal(disk, { segmentBytesMax: 1024 });
    let next = 1;
    for (let i = 0; i < 40; i++) {
      wal.appendBatch([write(1, { entries: entries({ from: next, count: 2, term: 1, dataBytes: 40 }) })]);
      next += 2;
      // Commit-only writes in between, some of them the last frame of a segment.
      wal.appendBatch([write(1, { hardState: hs(1, next - 1) })], { sync: false });
    }
    expect(wal.stats().segmentCount).toBeGreaterThan(3);
    const before = summarizeWal(wal);
    disk.crash({ tornWriteRate: 1 });
    const recovered = summarizeWal(openWal(disk, { segmentBytesMax: 1024 })).get(1);
    // Only the very last commit-only write may be gone; no hole anywhere before it.
    expect(recovered?.entries).toEqual(before.get(1)?.entries);
    expect(recovered?.hardState.commit).toBeGreaterThanOrEqual(next - 3);
    const closing = openWal(disk, { segmentBytesMax: 1024 });
    closing.appendBatch([write(1, { hardState: hs(1, next) })], { sync: false });
    closing.close();
    disk.crash({ tornWriteRate: 1 });
    expect(summarizeWal(openWal(disk, { segmentBytesMax: 1024 })).get(1)?.hardState.commit).toBe(next);
  });

  it('splits a batch over batchBytesMax into several frames, and an oversized entry writes nothing', () => {
    const disk = simDisk();
    const wal = openWal(disk, { batchBytesMax: 1024, recordBytesMax: 512 });
    const seqBefore = wal.stats().nextFrameSeq;
    wal.appendBatch([
      write(1, { entries: entries({ from: 1, count: 40, term: 1, dataBytes: 50 }), hardState: hs(1, 0) }),
      write(2, { entries: entries({ from: 1, count: 3, term: 1 }) }),
    ]);
    expect(wal.stats().nextFrameSeq - seqBefore).toBeGreaterThan(2);
    const before = summarizeWal(wal);
    const seq = wal.stats().nextFrameSeq;
    expect(() =>
      wal.appendBatch([write(3, { entries: entries({ from: 1, count: 1, term: 1, dataBytes: 600 }) })]),
    ).toThrow(StorageLimitError);
    expect(wal.stats().nextFrameSeq).toBe(seq);
    wal.close();
    expect(summarizeWal(openWal(disk, { batchBytesMax: 1024, recordBytesMax: 512 }))).toEqual(before);
  });

  it('deletes whole segments once every group compacted past them, keeping state they held', () => {
    const disk = simDisk();
    const limits = { segmentBytesMax: 1024 };
    const wal = openWal(disk, limits);
    // Group 2 writes its hard state and snapshot once, early: only the checkpoint keeps them.
    wal.appendBatch([
      write(2, { snapshot: snapshot({ index: 0, term: 0, voters: ['x'] }), hardState: hs(4, 0, 'x') }),
    ]);
    for (let i = 0; i < 40; i++) {
      wal.appendBatch([
        write(1, {
          entries: entries({ from: i * 3 + 1, count: 3, term: 2, dataBytes: 40 }),
          hardState: hs(2, i * 3),
        }),
      ]);
    }
    const before = wal.stats();
    expect(before.segmentCount).toBeGreaterThan(4);
    wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 100, term: 2 }) });
    const after = wal.stats();
    expect(after.firstSegmentSeq).toBeGreaterThan(before.firstSegmentSeq);
    expect(disk.exists(segPath(before.firstSegmentSeq))).toBe(false);
    expect(wal.group(1).firstIndex()).toBe(101);
    const state = summarizeWal(wal);
    wal.close();
    const reopened = openWal(disk, limits);
    const recovered = summarizeWal(reopened);
    expect(recovered.get(1)).toEqual(state.get(1));
    expect(recovered.get(2)?.hardState).toEqual(hs(4, 0, 'x'));
    expect(recovered.get(2)?.snapshot.confState.voters).toEqual(['x']);
  });

  it('keeps segments a group that never compacts still needs', () => {
    const disk = simDisk();
    const wal = openWal(disk, { segmentBytesMax: 1024 });
    for (let i = 0; i < 30; i++) {
      wal.appendBatch([
        write(1, { entries: entries({ from: i * 2 + 1, count: 2, term: 1, dataBytes: 40 }) }),
        write(2, { entries: entries({ from: i + 1, count: 1, term: 1 }) }),
      ]);
    }
    const first = wal.stats().firstSegmentSeq;
    wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 60, term: 1 }) });
    expect(wal.stats().firstSegmentSeq).toBe(first);
  });

  it('cuts a torn write off the last segment; every synced batch survives', () => {
    let cut = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const disk = simDisk(seed);
      const wal = openWal(disk);
      for (let i = 0; i < 5; i++) {
        wal.appendBatch([
          write(1, {
            entries: entries({ from: i * 2 + 1, count: 2, term: 1, dataBytes: 100 }),
            hardState: hs(1, i * 2),
          }),
        ]);
      }
      const synced = summarizeWal(wal);
      disk.scheduleCrash({ afterSyncs: 0 });
      const unsynced = [
        write(1, { entries: entries({ from: 11, count: 3, term: 2, dataBytes: 100 }), hardState: hs(2, 10) }),
      ];
      expect(() => wal.appendBatch(unsynced)).toThrow(SimulatedCrashError);
      disk.crash({ tornWriteRate: 0.8, bitFlipRate: 0.3 });
      const recovered = openWal(disk);
      const state = summarizeWal(recovered);
      if (recovered.recovery.tornTail !== null) cut++;
      if (state.get(1)?.entries.length === 10) expect(state).toEqual(synced);
      else expect(state.get(1)?.entries.length).toBe(13);
      // The recovered WAL takes new writes after the cut.
      recovered.appendBatch([write(3, { entries: entries({ from: 1, count: 1, term: 1 }) })]);
      recovered.close();
      expect(summarizeWal(openWal(disk)).get(3)?.entries).toHaveLength(1);
    }
    expect(cut).toBeGreaterThan(10);
  });

  it('refuses to start on a bad checksum in a sealed segment, naming file and offset', () => {
    const disk = simDisk();
    const wal = openWal(disk, { segmentBytesMax: 1024 });
    for (let i = 0; i < 30; i++)
      wal.appendBatch([write(1, { entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 200 }) })]);
    expect(wal.stats().segmentCount).toBeGreaterThan(2);
    wal.close();
    // Segment 2's first frame starts right after the 32-byte header; its payload after 24 more.
    disk.corrupt({ path: segPath(2), offset: 32 + 24 + 40 });
    const error = catchError(() => openWal(disk, { segmentBytesMax: 1024 }));
    expect(error).toBeInstanceOf(WalCorruptionError);
    expect(error).toMatchObject({ code: 'FRAME_CHECKSUM_MISMATCH', file: segmentFileName(2), offset: 32 });
  });

  it('refuses to cut damage in the last segment that a valid frame follows', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    for (let i = 0; i < 3; i++)
      wal.appendBatch([write(1, { entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 100 }) })]);
    wal.close();
    disk.corrupt({ path: segPath(1), offset: 32 + 4 });
    const error = catchError(() => openWal(disk));
    expect(error).toMatchObject({ code: 'DAMAGE_BEFORE_VALID_FRAME', file: segmentFileName(1), offset: 32 });
  });

  it('refuses to start when a segment in the middle is missing', () => {
    const disk = simDisk();
    const wal = openWal(disk, { segmentBytesMax: 1024 });
    for (let i = 0; i < 30; i++)
      wal.appendBatch([write(1, { entries: entries({ from: i + 1, count: 1, term: 1, dataBytes: 200 }) })]);
    wal.close();
    disk.unlink(segPath(2));
    const error = catchError(() => openWal(disk, { segmentBytesMax: 1024 }));
    expect(error).toBeInstanceOf(WalCorruptionError);
    expect(error).toMatchObject({ code: 'SEGMENT_MISSING', file: segmentFileName(2), offset: 0 });
  });

  it('refuses to start without its metadata file when segments exist', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    wal.appendBatch([write(1, { entries: entries({ from: 1, count: 1, term: 1 }) })]);
    wal.close();
    disk.unlink(`${walDir}/wal.meta`);
    expect(catchError(() => openWal(disk))).toMatchObject({ code: 'META_INVALID' });
  });

  it('an fsync error fails the WAL: the error surfaces typed, and every later use is refused', () => {
    const disk = simDisk();
    const wal = openWal(disk);
    wal.appendBatch([write(1, { entries: entries({ from: 1, count: 2, term: 1 }), hardState: hs(1, 1) })]);
    disk.failSync({ pathIncludes: '.wal' });
    const error = catchError(() =>
      wal.appendBatch([write(1, { entries: entries({ from: 3, count: 1, term: 1 }) })]),
    );
    expect(error).toBeInstanceOf(DiskSyncError);
    expect(wal.group(1).lastIndex()).toBe(2);
    expect(() => wal.appendBatch([write(1, { hardState: hs(1, 2) })])).toThrow(WalFailedError);
    expect(() => wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: 1, term: 1 }) })).toThrow(
      WalFailedError,
    );
  });

  it('survives a crash at every sync point of a rotation or a segment deletion', () => {
    for (let crashAt = 0; crashAt < 8; crashAt++) {
      for (let seed = 1; seed <= 8; seed++) {
        const disk = simDisk(seed);
        const limits = { segmentBytesMax: 1024 };
        const wal = openWal(disk, limits);
        let acked = summarizeWal(wal);
        let i = 0;
        disk.scheduleCrash({ afterSyncs: 20 + crashAt });
        let inFlight: Map<
          number,
          ReturnType<typeof summarizeWal> extends Map<number, infer V> ? V : never
        > | null = null;
        try {
          for (; i < 60; i++) {
            wal.appendBatch([
              write(1, {
                entries: entries({ from: i * 2 + 1, count: 2, term: 1, dataBytes: 60 }),
                hardState: hs(1, i * 2),
              }),
            ]);
            acked = summarizeWal(wal);
            if (i % 7 === 6) {
              wal.recordSnapshot({ groupId: 1, snapshot: snapshot({ index: i * 2, term: 1 }) });
              acked = summarizeWal(wal);
            }
          }
        } catch (error) {
          expect(error).toBeInstanceOf(SimulatedCrashError);
          inFlight = acked;
        }
        expect(inFlight).not.toBeNull();
        disk.crash({ tornWriteRate: 0.5 });
        const recovered = summarizeWal(openWal(disk, limits)).get(1);
        const ackedLog = acked.get(1);
        // The write in flight may or may not have survived; everything acknowledged did.
        expect(recovered?.entries.slice(0, ackedLog?.entries.length ?? 0).at(-1)).toEqual(
          ackedLog?.entries.at(-1),
        );
        expect((recovered?.entries.at(-1)?.index ?? 0) >= (ackedLog?.entries.at(-1)?.index ?? 0)).toBe(true);
      }
    }
  });

  it('reopens an empty WAL and one whose creation a crash interrupted', () => {
    const disk = simDisk();
    openWal(disk).close();
    expect(openWal(disk).groupIds()).toEqual([]);
    for (let crashAt = 0; crashAt < 4; crashAt++) {
      const d = simDisk(crashAt + 10);
      d.scheduleCrash({ afterSyncs: crashAt });
      expect(() => Wal.open({ disk: d, dir: walDir })).toThrow(SimulatedCrashError);
      d.crash();
      const wal = Wal.open({ disk: d, dir: walDir });
      wal.appendBatch([write(1, { entries: entries({ from: 1, count: 1, term: 1 }) })]);
      wal.close();
      expect(Wal.open({ disk: d, dir: walDir }).group(1).lastIndex()).toBe(1);
    }
  });
});
