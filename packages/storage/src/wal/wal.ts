import { assert, type Entry, type HardState, type Snapshot, type SnapshotMetadata } from '@conclave/raft';
import { type Logger, pino } from 'pino';
import { FormatError } from '../codec.js';
import { crc32 } from '../crc32.js';
import { type Disk, type DiskFile, joinPath } from '../disk.js';
import {
  StorageLimitError,
  WalClosedError,
  WalCorruptionCode,
  WalCorruptionError,
  WalFailedError,
} from '../errors.js';
import { GroupLog } from '../group-log.js';
import { resolveStorageLimits, type StorageLimits } from '../limits.js';
import { applyRecord, ReplayError } from './apply.js';
import {
  decodeFrameHeader,
  decodeRecords,
  decodeSegmentHeader,
  encodeFrame,
  encodeSegmentHeader,
  entryRecordBytes,
  frameHeaderBytes,
  frameMagic,
  parseSegmentFileName,
  recordBytes,
  recordHeaderBytes,
  segmentFileName,
  segmentHeaderBytes,
  type WalRecord,
} from './format.js';
import { type GroupCheckpoint, metaFileName, readMeta, writeMeta } from './meta.js';

/** What one group contributes to a batch: one Ready's durable state. */
export interface GroupWrite {
  readonly groupId: number;
  /** New entries; the first may replace a conflicting suffix of the log. */
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  /**
   * A snapshot received from the leader (Ready.snapshot): the group's log restarts after it.
   * Its bytes must already be durable in the snapshot store; the WAL records the metadata.
   * A snapshot at index 0 bootstraps a group with its first configuration.
   */
  readonly snapshot: Snapshot | null;
}

export interface WalOptions {
  readonly disk: Disk;
  readonly dir: string;
  readonly limits?: Partial<StorageLimits>;
  readonly logger?: Logger;
}

export interface WalStats {
  readonly segmentCount: number;
  readonly firstSegmentSeq: number;
  readonly lastSegmentSeq: number;
  readonly tailSegmentBytes: number;
  /** Bytes in every live segment: the WAL's size on disk (a gauge in metrics/). */
  readonly totalBytes: number;
  readonly nextFrameSeq: number;
  readonly groupCount: number;
}

/** What recovery did beyond plain replay, for logs and tests. */
export interface WalRecoveryReport {
  /** The last segment ended in a torn frame, cut at `offset` (`bytesCut` bytes). */
  readonly tornTail: { readonly file: string; readonly offset: number; readonly bytesCut: number } | null;
  /** The last segment's header was torn while it was being created; it was rewritten. */
  readonly rewroteSegmentHeader: string | null;
  /** Segment files below the first live one, left by a crash during deletion, removed. */
  readonly staleSegmentsRemoved: readonly string[];
}

interface SegmentInfo {
  readonly seq: number;
  readonly name: string;
  readonly firstFrameSeq: number;
  sizeBytes: number;
  /** Per group, the highest entry index a record in this segment carries. */
  readonly maxIndexByGroup: Map<number, number>;
}

interface PlannedRecord {
  readonly record: WalRecord;
  readonly sizeBytes: number;
  /** For an installed snapshot: its bytes, attached to the group once the record is durable. */
  readonly snapshot: Snapshot | null;
}

type FrameDamage = {
  readonly offset: number;
  readonly code: WalCorruptionCode;
  readonly detail: string;
};

const silentLogger: Logger = pino({ level: 'silent' });
const emptyHardState: HardState = { term: 0, vote: null, commit: 0 };
const groupIdMax = 0xffffffff;

/**
 * A segmented write-ahead log shared by many Raft groups.
 *
 * - `appendBatch` makes one batch of Readys (any number of groups) durable with one write
 *   and one fdatasync: group commit.
 * - `appendBatchAsync` writes at once and runs the fdatasync on the thread pool, so the event
 *   loop goes on during it. One at a time: the host never has two batches in flight.
 * - Each group's state lives in memory as a `GroupLog` (the LogStorage its core reads), updated
 *   once the write carrying the change is made: after its fdatasync for `appendBatch`, before
 *   it for `appendBatchAsync`, whose caller lets nothing depend on the batch (no
 *   acknowledgement leaves, no entry applies) until the promise resolves. A failed
 *   fdatasync fails the WAL either way, and the process stops.
 * - Old segments are deleted once no group needs their entries (after snapshots and
 *   compaction), behind a checkpoint in the metadata file.
 * - Any I/O error marks the WAL failed: it refuses all further use (`WalFailedError`), because
 *   after a failed fdatasync nobody knows what reached the disk.
 */
export class Wal {
  readonly #disk: Disk;
  readonly #dir: string;
  readonly #limits: StorageLimits;
  readonly #logger: Logger;
  readonly #groups: Map<number, GroupLog>;
  #checkpoint: Map<number, GroupCheckpoint>;
  readonly #segments: SegmentInfo[];
  #tail: DiskFile;
  #nextFrameSeq: number;
  #failure: { readonly error: unknown } | null = null;
  #closed = false;
  /** The tail holds a frame written with `sync: false` and not yet covered by an fdatasync. */
  #unsynced = false;
  /** The fdatasync of `appendBatchAsync` in flight, and the file it syncs (not closed until it settles). */
  #syncing: { readonly file: DiskFile; readonly done: Promise<void> } | null = null;
  /** Background unlinks of obsolete segments in flight (#unlinkInBackground). */
  readonly #unlinking = new Set<Promise<void>>();
  /** Files retired (rotated away, or the WAL closed) while their fdatasync was in flight. */
  readonly #closeAfterSync: DiskFile[] = [];
  readonly recovery: WalRecoveryReport;

  private constructor(options: {
    disk: Disk;
    dir: string;
    limits: StorageLimits;
    logger: Logger;
    groups: Map<number, GroupLog>;
    checkpoint: Map<number, GroupCheckpoint>;
    segments: SegmentInfo[];
    tail: DiskFile;
    nextFrameSeq: number;
    recovery: WalRecoveryReport;
  }) {
    this.#disk = options.disk;
    this.#dir = options.dir;
    this.#limits = options.limits;
    this.#logger = options.logger;
    this.#groups = options.groups;
    this.#checkpoint = options.checkpoint;
    this.#segments = options.segments;
    this.#tail = options.tail;
    this.#nextFrameSeq = options.nextFrameSeq;
    this.recovery = options.recovery;
  }

  /**
   * Open the WAL in `dir`, creating it when the directory holds none, and recover every
   * group's state. Throws WalCorruptionError rather than drop data a sync acknowledged.
   */
  static open(options: WalOptions): Wal {
    const limits = resolveStorageLimits(options.limits);
    const logger = options.logger ?? silentLogger;
    const { disk, dir } = options;
    disk.mkdir(dir);
    let names = disk.readdir(dir);
    if (!names.includes(metaFileName)) {
      initialize({ disk, dir, names });
      names = disk.readdir(dir);
    }
    const meta = readMeta({ disk, dir });
    const seqs = names
      .map(parseSegmentFileName)
      .filter((seq): seq is number => seq !== null)
      .sort((a, b) => a - b);

    const stale = seqs.filter((seq) => seq < meta.firstSegmentSeq).map(segmentFileName);
    for (const name of stale) disk.unlink(joinPath(dir, name));
    if (stale.length > 0) {
      disk.syncDir(dir);
      logger.warn({ files: stale }, 'removed segments left behind by an interrupted deletion');
    }
    const live = seqs.filter((seq) => seq >= meta.firstSegmentSeq);
    for (let i = 0; i === 0 || i < live.length; i++) {
      const expected = meta.firstSegmentSeq + i;
      if (live[i] === expected) continue;
      throw new WalCorruptionError({
        code: WalCorruptionCode.SegmentMissing,
        file: segmentFileName(expected),
        offset: 0,
        detail: `segments from ${meta.firstSegmentSeq} through ${live[live.length - 1] ?? expected} must all exist`,
      });
    }

    const groups = new Map<number, GroupLog>();
    const checkpoint = new Map<number, GroupCheckpoint>();
    for (const cp of meta.groups) {
      const log = new GroupLog({ groupId: cp.groupId });
      log.restore(cp);
      groups.set(cp.groupId, log);
      checkpoint.set(cp.groupId, cp);
    }
    const groupFor = (groupId: number): GroupLog => {
      let log = groups.get(groupId);
      if (log === undefined) {
        log = new GroupLog({ groupId });
        groups.set(groupId, log);
      }
      return log;
    };

    const segments: SegmentInfo[] = [];
    let expectedFrameSeq: number | null = null;
    let tail: DiskFile | null = null;
    let tornTail: WalRecoveryReport['tornTail'] = null;
    let rewroteSegmentHeader: string | null = null;
    for (let i = 0; i < live.length; i++) {
      const seq = live[i] as number;
      const isLast = i === live.length - 1;
      const name = segmentFileName(seq);
      const file = disk.open(joinPath(dir, name), { mode: 'existing' });
      let bytes = file.read({ offset: 0, length: file.size() });
      let header = decodeSegmentHeader(bytes);
      if (
        header === null ||
        header.segmentSeq !== seq ||
        (expectedFrameSeq !== null && header.firstFrameSeq !== expectedFrameSeq)
      ) {
        // A new segment is created, its header written and synced, and the directory synced,
        // all before any frame goes into it; so a torn header on the last segment (never the
        // first live one) means a crash during creation, and the segment holds nothing.
        const tornCreation =
          isLast &&
          i > 0 &&
          header === null &&
          expectedFrameSeq !== null &&
          findValidFrame(bytes, 0) === null;
        if (!tornCreation || expectedFrameSeq === null) {
          throw new WalCorruptionError({
            code: WalCorruptionCode.SegmentHeaderInvalid,
            file: name,
            offset: 0,
            detail:
              header === null
                ? 'header is short or fails its checksum'
                : `header names segment ${header.segmentSeq} starting at frame ${header.firstFrameSeq}, expected segment ${seq} at frame ${expectedFrameSeq ?? 'any'}`,
          });
        }
        header = { segmentSeq: seq, firstFrameSeq: expectedFrameSeq };
        bytes = encodeSegmentHeader(header);
        file.truncate(0);
        file.append(bytes);
        file.datasync();
        rewroteSegmentHeader = name;
        logger.warn({ file: name }, 'rewrote the torn header of a segment created just before a crash');
      }
      const info: SegmentInfo = {
        seq,
        name,
        firstFrameSeq: header.firstFrameSeq,
        sizeBytes: segmentHeaderBytes,
        maxIndexByGroup: new Map(),
      };
      const scan = scanFrames({
        bytes,
        file: name,
        firstFrameSeq: header.firstFrameSeq,
        onRecords: (records, frameOffset) => {
          for (const record of records) {
            try {
              applyRecord(groupFor(record.groupId), record);
            } catch (error) {
              if (!(error instanceof ReplayError)) throw error;
              throw new WalCorruptionError({
                code: WalCorruptionCode.ReplayInconsistent,
                file: name,
                offset: frameOffset,
                detail: error.message,
              });
            }
            noteRecord(info, record);
          }
        },
      });
      if (scan.damage !== null) {
        const { damage } = scan;
        if (!isLast) throw new WalCorruptionError({ ...damage, file: name });
        // Only the last write can be unsynced, and one write is one frame: if a valid frame
        // follows the damage, the damage hit synced data and must not be cut away.
        const valid = findValidFrame(bytes, damage.offset + 1);
        if (valid !== null) {
          throw new WalCorruptionError({
            code: WalCorruptionCode.DamageBeforeValidFrame,
            file: name,
            offset: damage.offset,
            detail: `${damage.detail}; a valid frame follows at byte ${valid}`,
          });
        }
        tornTail = { file: name, offset: damage.offset, bytesCut: bytes.length - damage.offset };
        logger.warn({ ...tornTail, reason: damage.detail }, 'cutting a torn write off the end of the WAL');
        file.truncate(damage.offset);
        file.datasync();
      }
      info.sizeBytes = scan.endOffset;
      expectedFrameSeq = scan.nextFrameSeq;
      segments.push(info);
      if (isLast) tail = file;
      else file.close();
    }
    assert(tail !== null && expectedFrameSeq !== null, 'recovery opened no tail segment');
    return new Wal({
      disk,
      dir,
      limits,
      logger,
      groups,
      checkpoint,
      segments,
      tail,
      nextFrameSeq: expectedFrameSeq,
      recovery: { tornTail, rewroteSegmentHeader, staleSegmentsRemoved: stale },
    });
  }

  get limits(): StorageLimits {
    return this.#limits;
  }

  /** The group's log; an unknown group gets an empty one (durable once something is written). */
  group(groupId: number): GroupLog {
    assertGroupId(groupId);
    let log = this.#groups.get(groupId);
    if (log === undefined) {
      log = new GroupLog({ groupId });
      this.#groups.set(groupId, log);
    }
    return log;
  }

  groupIds(): number[] {
    return [...this.#groups.keys()].sort((a, b) => a - b);
  }

  stats(): WalStats {
    const first = this.#segments[0];
    const last = this.#segments[this.#segments.length - 1];
    assert(first !== undefined && last !== undefined, 'the WAL has no segment');
    return {
      segmentCount: this.#segments.length,
      firstSegmentSeq: first.seq,
      lastSegmentSeq: last.seq,
      tailSegmentBytes: last.sizeBytes,
      totalBytes: this.#segments.reduce((sum, segment) => sum + segment.sizeBytes, 0),
      nextFrameSeq: this.#nextFrameSeq,
      groupCount: this.#groups.size,
    };
  }

  /**
   * Make a batch of groups' Readys durable: per group, the installed snapshot's marker, then
   * its entries (replacing any conflicting suffix), then its hard state, in one write and one
   * fdatasync. A batch over `batchBytesMax` is split into several frames, each written and
   * synced in turn. When this returns, every group's GroupLog shows the batch.
   *
   * Throws StorageLimitError before writing anything if a record is over `recordBytesMax`;
   * an I/O error is rethrown as is and marks the WAL failed.
   */
  /**
   * `sync: false` writes without an fdatasync, for records that may be lost in a crash
   * without harm (a hard state whose only change is the commit index, which Raft recovers
   * from its peers). The next synced write, or a rotation, makes them durable too.
   */
  appendBatch(batch: readonly GroupWrite[], options: { sync?: boolean } = {}): void {
    this.#checkUsable();
    const planned = this.#plan(batch);
    const sync = options.sync ?? true;
    for (const frame of packFrames(planned, this.#limits.batchBytesMax)) this.#writeFrame(frame, { sync });
  }

  /**
   * `appendBatch` with its fdatasync off the event loop: the batch is written, and shown in
   * every group's GroupLog, before this returns its promise, which resolves once the batch
   * is durable. A disk without `datasyncAsync` syncs at once. One in flight at a time.
   * Rejects with the I/O error, which marks the WAL failed.
   */
  appendBatchAsync(batch: readonly GroupWrite[]): Promise<void> {
    assert(this.#syncing === null, 'appendBatchAsync: one batch in flight at a time');
    this.#checkUsable();
    const planned = this.#plan(batch);
    for (const frame of packFrames(planned, this.#limits.batchBytesMax)) {
      this.#writeFrame(frame, { sync: false });
    }
    const file = this.#tail;
    if (file.datasyncAsync === undefined) {
      this.#syncTail();
      return Promise.resolve();
    }
    const frameSeqAfter = this.#nextFrameSeq;
    const done = file.datasyncAsync().then(
      () => {
        this.#settleSync();
        // Later frames, if any, were written after the call and are not covered.
        if (this.#tail === file && this.#nextFrameSeq === frameSeqAfter) this.#unsynced = false;
      },
      (error: unknown) => {
        this.#settleSync();
        this.#fail(error);
        throw error;
      },
    );
    this.#syncing = { file, done };
    return done;
  }

  /**
   * Record a snapshot the application took (its bytes already in the snapshot store) and
   * drop entries up to `compactThroughIndex` (default: the snapshot's index; keep some for
   * slow followers by passing less). Then deletes segments no group needs any more.
   */
  recordSnapshot(options: { groupId: number; snapshot: Snapshot; compactThroughIndex?: number }): void {
    this.#checkUsable();
    const { groupId, snapshot } = options;
    const log = this.#groups.get(groupId);
    assert(log !== undefined, () => `recordSnapshot: unknown group ${groupId}`);
    const { index, term } = snapshot.metadata;
    const through = options.compactThroughIndex ?? index;
    assert(
      index >= log.snapshotMetadata().index,
      () => `recordSnapshot: ${index} older than ${log.snapshotMetadata().index}`,
    );
    assert(
      index >= log.compactedThrough().index && index <= log.lastIndex(),
      () => `recordSnapshot: ${index} outside the log [${log.compactedThrough().index}, ${log.lastIndex()}]`,
    );
    assert(
      log.term(index) === term,
      () => `recordSnapshot: term ${term} at ${index}, the log says ${log.term(index)}`,
    );
    assert(
      through <= index,
      () => `recordSnapshot: compacting through ${through} past the snapshot ${index}`,
    );
    const records: PlannedRecord[] = [
      plan({ type: 'snapshot', groupId, mode: 'taken', metadata: snapshot.metadata }, snapshot),
    ];
    if (through > log.compactedThrough().index) {
      records.push(plan({ type: 'compact', groupId, throughIndex: through }, null));
    }
    this.#writeFrame(records);
    this.#removeObsoleteSegments();
  }

  /** Drop a group's entries through `throughIndex` (at most its snapshot), then delete unneeded segments. */
  compact(options: { groupId: number; throughIndex: number }): void {
    this.#checkUsable();
    const { groupId, throughIndex } = options;
    const log = this.#groups.get(groupId);
    assert(log !== undefined, () => `compact: unknown group ${groupId}`);
    if (throughIndex <= log.compactedThrough().index) return;
    assert(
      throughIndex <= log.snapshotMetadata().index && throughIndex <= log.lastIndex(),
      () => `compact: ${throughIndex} past the snapshot ${log.snapshotMetadata().index} or the log`,
    );
    this.#writeFrame([plan({ type: 'compact', groupId, throughIndex }, null)]);
    this.#removeObsoleteSegments();
  }

  /**
   * Rebuild one group's log starting from an older snapshot `base`, for when the snapshot
   * the WAL points at is unreadable. Succeeds only if the live segments still hold every
   * entry from `base.index + 1` through the newer snapshot's index; then the group's log is
   * replaced and future segment deletion keeps those entries. Returns why not, otherwise.
   */
  rebuildGroupFrom(options: {
    groupId: number;
    base: SnapshotMetadata;
  }): { ok: true } | { ok: false; reason: string } {
    this.#checkUsable();
    const { groupId, base } = options;
    const current = this.group(groupId).snapshotMetadata();
    assert(base.index <= current.index, 'rebuildGroupFrom: base newer than the current snapshot');
    const cp = this.#checkpoint.get(groupId);
    const log = new GroupLog({ groupId });
    log.restore({
      hardState: cp?.hardState ?? emptyHardState,
      snapshot: base,
      compactedThrough: { index: base.index, term: base.term },
    });
    try {
      for (const segment of this.#segments) {
        const bytes = this.#readSegment(segment);
        const scan = scanFrames({
          bytes,
          file: segment.name,
          firstFrameSeq: segment.firstFrameSeq,
          onRecords: (records) => {
            for (const record of records) {
              if (record.groupId === groupId) applyRecord(log, record, { ceiling: base.index });
            }
          },
        });
        if (scan.damage !== null) throw new WalCorruptionError({ ...scan.damage, file: segment.name });
      }
    } catch (error) {
      if (error instanceof ReplayError) return { ok: false, reason: error.message };
      throw error;
    }
    if (current.index > base.index) {
      if (log.lastIndex() < current.index || log.term(current.index) !== current.term) {
        return {
          ok: false,
          reason: `the WAL holds entries ${log.firstIndex()}..${log.lastIndex()}, not through ${current.index} at term ${current.term}`,
        };
      }
    }
    this.#groups.set(groupId, log);
    this.#logger.warn(
      { groupId, from: base.index, skipped: current.index },
      'rebuilt a group from an older snapshot',
    );
    return { ok: true };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#unsynced && this.#failure === null) this.#tail.datasync();
    this.#retire(this.#tail);
  }

  /** Close a file now, or once the fdatasync in flight on it settles (closing under it is unsafe). */
  #retire(file: DiskFile): void {
    if (this.#syncing?.file === file) this.#closeAfterSync.push(file);
    else file.close();
  }

  #settleSync(): void {
    this.#syncing = null;
    for (const file of this.#closeAfterSync.splice(0)) file.close();
  }

  #syncTail(): void {
    try {
      this.#tail.datasync();
      this.#unsynced = false;
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  // ---- internals ----

  #checkUsable(): void {
    if (this.#closed) throw new WalClosedError();
    if (this.#failure !== null) throw new WalFailedError({ cause: this.#failure.error });
  }

  #fail(error: unknown): void {
    this.#failure = { error };
    this.#logger.error({ err: error }, 'WAL I/O failed; refusing further use until restart');
  }

  /** Validate the batch and turn it into records, touching nothing, so a bad batch writes nothing. */
  #plan(batch: readonly GroupWrite[]): PlannedRecord[] {
    const out: PlannedRecord[] = [];
    const projections = new Map<number, { offset: number; last: number; snapshotIndex: number }>();
    for (const item of batch) {
      const { groupId } = item;
      assertGroupId(groupId);
      const log = this.#groups.get(groupId);
      const p = projections.get(groupId) ?? {
        offset: log?.compactedThrough().index ?? 0,
        last: log?.lastIndex() ?? 0,
        snapshotIndex: log?.snapshotMetadata().index ?? 0,
      };
      if (item.snapshot !== null) {
        const { metadata } = item.snapshot;
        assert(
          metadata.index >= p.snapshotIndex,
          () => `group ${groupId}: installing snapshot ${metadata.index} older than ${p.snapshotIndex}`,
        );
        out.push(plan({ type: 'snapshot', groupId, mode: 'installed', metadata }, item.snapshot));
        p.offset = metadata.index;
        p.last = metadata.index;
        p.snapshotIndex = metadata.index;
      }
      const first = item.entries[0];
      if (first !== undefined) {
        assert(
          first.index > p.offset,
          () => `group ${groupId}: entry ${first.index} at or below compacted ${p.offset}`,
        );
        assert(
          first.index <= p.last + 1,
          () => `group ${groupId}: entry ${first.index} leaves a gap after ${p.last}`,
        );
        item.entries.forEach((entry, i) => {
          assert(
            entry.index === first.index + i,
            () => `group ${groupId}: entries not contiguous at ${entry.index}`,
          );
        });
        if (first.index <= p.last)
          out.push(plan({ type: 'truncateSuffix', groupId, fromIndex: first.index }, null));
        for (const chunk of chunkEntries(item.entries, this.#limits.recordBytesMax)) {
          out.push(plan({ type: 'entries', groupId, entries: chunk }, null));
        }
        p.last = first.index + item.entries.length - 1;
      }
      if (item.hardState !== null)
        out.push(plan({ type: 'hardState', groupId, hardState: item.hardState }, null));
      projections.set(groupId, p);
    }
    for (const { record, sizeBytes } of out) {
      if (sizeBytes > this.#limits.recordBytesMax) {
        throw new StorageLimitError({
          limit: 'recordBytesMax',
          valueBytes: sizeBytes,
          maxBytes: this.#limits.recordBytesMax,
          what: `a ${record.type} record of group ${record.groupId}`,
        });
      }
    }
    return out;
  }

  #writeFrame(records: readonly PlannedRecord[], options: { sync: boolean } = { sync: true }): void {
    let payloadBytes = 0;
    for (const r of records) payloadBytes += r.sizeBytes;
    const frame = encodeFrame({
      seq: this.#nextFrameSeq,
      records: records.map((r) => r.record),
      payloadBytes,
    });
    let segment = this.#tailSegment();
    try {
      if (
        segment.sizeBytes > segmentHeaderBytes &&
        segment.sizeBytes + frame.length > this.#limits.segmentBytesMax
      ) {
        segment = this.#rotate();
      }
      this.#tail.append(frame);
      if (options.sync) this.#tail.datasync();
      this.#unsynced = !options.sync;
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    this.#nextFrameSeq++;
    segment.sizeBytes += frame.length;
    try {
      for (const { record, snapshot } of records) {
        const log = this.group(record.groupId);
        applyRecord(log, record);
        if (snapshot !== null) log.attachSnapshot(snapshot);
        noteRecord(segment, record);
      }
    } catch (error) {
      // The frame is durable but memory did not follow: a bug, and memory can no longer be trusted.
      this.#fail(error);
      throw error;
    }
  }

  /** Seal the tail and start the next segment; its header and name are durable before any frame. */
  #rotate(): SegmentInfo {
    // A frame left unsynced must not vanish behind later, synced segments: recovery would
    // see a hole in the middle of the log.
    if (this.#unsynced) this.#tail.datasync();
    const seq = this.#tailSegment().seq + 1;
    const name = segmentFileName(seq);
    const file = this.#disk.open(joinPath(this.#dir, name), { mode: 'createExclusive' });
    file.append(encodeSegmentHeader({ segmentSeq: seq, firstFrameSeq: this.#nextFrameSeq }));
    file.datasync();
    this.#disk.syncDir(this.#dir);
    this.#retire(this.#tail);
    this.#tail = file;
    const info: SegmentInfo = {
      seq,
      name,
      firstFrameSeq: this.#nextFrameSeq,
      sizeBytes: segmentHeaderBytes,
      maxIndexByGroup: new Map(),
    };
    this.#segments.push(info);
    return info;
  }

  /**
   * Delete the longest prefix of sealed segments whose entries every group has compacted
   * away. First the metadata file records each group's current state (what those segments
   * may have been the last to hold) and the new first segment; then the files go.
   */
  #removeObsoleteSegments(): void {
    let count = 0;
    while (count < this.#segments.length - 1 && this.#isObsolete(this.#segments[count] as SegmentInfo))
      count++;
    const firstKept = this.#segments[count];
    if (count === 0 || firstKept === undefined) return;
    // The checkpoint copies the groups' state from memory, which may run ahead of the disk
    // (a write whose fdatasync is in flight). Both callers have just written a synced frame,
    // which made everything before it durable, so the checkpoint names nothing that is not.
    assert(!this.#unsynced, 'segments are deleted only right after a synced frame');
    const checkpoint: GroupCheckpoint[] = [];
    for (const [groupId, log] of this.#groups) {
      checkpoint.push({
        groupId,
        hardState: log.hardState(),
        snapshot: log.snapshotMetadata(),
        compactedThrough: log.compactedThrough(),
      });
    }
    const removed = this.#segments.slice(0, count);
    try {
      writeMeta({
        disk: this.#disk,
        dir: this.#dir,
        meta: { firstSegmentSeq: firstKept.seq, groups: checkpoint },
      });
      if (this.#disk.unlinkAsync === undefined) {
        for (const segment of removed) this.#disk.unlink(joinPath(this.#dir, segment.name));
        this.#disk.syncDir(this.#dir);
      }
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    if (this.#disk.unlinkAsync !== undefined) this.#unlinkInBackground(removed.map((s) => s.name));
    this.#segments.splice(0, count);
    this.#checkpoint = new Map(checkpoint.map((cp) => [cp.groupId, cp]));
    this.#logger.info({ removed: removed.map((s) => s.name) }, 'deleted WAL segments no group needs');
  }

  /**
   * Unlinks segments the metadata file already puts before the first live one, off the
   * event loop. Nothing waits on it: if it fails or a crash cuts it short, the files are
   * stale and the next start deletes them (see open), so a failure is only logged.
   */
  #unlinkInBackground(names: readonly string[]): void {
    const unlinkAsync = this.#disk.unlinkAsync?.bind(this.#disk);
    assert(unlinkAsync !== undefined, 'a background unlink needs Disk.unlinkAsync');
    for (const name of names) {
      const unlinking = unlinkAsync(joinPath(this.#dir, name)).catch((error: unknown) => {
        this.#logger.warn(
          { file: name, err: error },
          'could not delete a stale WAL segment; the next start retries',
        );
      });
      this.#unlinking.add(unlinking);
      void unlinking.finally(() => this.#unlinking.delete(unlinking));
    }
  }

  /** Resolves once every background unlink begun so far has finished (tests, shutdown). */
  async unlinksSettled(): Promise<void> {
    await Promise.all([...this.#unlinking]);
  }

  #isObsolete(segment: SegmentInfo): boolean {
    for (const [groupId, maxIndex] of segment.maxIndexByGroup) {
      const log = this.#groups.get(groupId);
      if (log !== undefined && maxIndex > log.compactedThrough().index) return false;
    }
    return true;
  }

  #tailSegment(): SegmentInfo {
    const segment = this.#segments[this.#segments.length - 1];
    assert(segment !== undefined, 'the WAL has no segment');
    return segment;
  }

  #readSegment(segment: SegmentInfo): Uint8Array {
    if (segment === this.#tailSegment()) return this.#tail.read({ offset: 0, length: segment.sizeBytes });
    const file = this.#disk.open(joinPath(this.#dir, segment.name), { mode: 'existing' });
    try {
      return file.read({ offset: 0, length: segment.sizeBytes });
    } finally {
      file.close();
    }
  }
}

function assertGroupId(groupId: number): void {
  assert(Number.isInteger(groupId) && groupId >= 0 && groupId <= groupIdMax, () => `bad group id ${groupId}`);
}

function plan(record: WalRecord, snapshot: Snapshot | null): PlannedRecord {
  return { record, sizeBytes: recordBytes(record), snapshot };
}

function noteRecord(segment: SegmentInfo, record: WalRecord): void {
  if (record.type !== 'entries') return;
  const last = record.entries[record.entries.length - 1];
  if (last === undefined) return;
  const previous = segment.maxIndexByGroup.get(record.groupId) ?? 0;
  if (last.index > previous) segment.maxIndexByGroup.set(record.groupId, last.index);
}

/** Split entries into runs whose record stays within `recordBytesMax`; one oversized entry is an error. */
function chunkEntries(entries: readonly Entry[], recordBytesMax: number): (readonly Entry[])[] {
  const overhead = recordHeaderBytes + 4;
  const chunks: (readonly Entry[])[] = [];
  let start = 0;
  let bytes = overhead;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    const size = entryRecordBytes(entry);
    if (overhead + size > recordBytesMax) {
      throw new StorageLimitError({
        limit: 'recordBytesMax',
        valueBytes: overhead + size,
        maxBytes: recordBytesMax,
        what: `entry ${entry.index}`,
      });
    }
    if (bytes + size > recordBytesMax) {
      chunks.push(entries.slice(start, i));
      start = i;
      bytes = overhead;
    }
    bytes += size;
  }
  chunks.push(start === 0 ? entries : entries.slice(start));
  return chunks;
}

/** Greedily pack records, in order, into frames of at most `batchBytesMax` payload bytes. */
function packFrames(records: readonly PlannedRecord[], batchBytesMax: number): PlannedRecord[][] {
  const frames: PlannedRecord[][] = [];
  let current: PlannedRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    if (current.length > 0 && bytes + record.sizeBytes > batchBytesMax) {
      frames.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += record.sizeBytes;
  }
  if (current.length > 0) frames.push(current);
  return frames;
}

/** A fresh WAL: the first segment, durable with its name, then the metadata that makes it live. */
function initialize(options: { disk: Disk; dir: string; names: readonly string[] }): void {
  const { disk, dir, names } = options;
  const seqs = names.map(parseSegmentFileName).filter((s): s is number => s !== null);
  const first = joinPath(dir, segmentFileName(1));
  // Frames go into a segment only after the metadata exists, so segment 1 holding nothing
  // but (part of) its header is an initialisation a crash interrupted; anything else is not.
  const interrupted =
    seqs.length === 0 ||
    (seqs.length === 1 && seqs[0] === 1 && readSize({ disk, path: first }) <= segmentHeaderBytes);
  if (!interrupted) {
    throw new WalCorruptionError({
      code: WalCorruptionCode.MetaInvalid,
      file: metaFileName,
      offset: 0,
      detail: `missing, but ${seqs.length} segment file(s) exist`,
    });
  }
  if (seqs.length === 1) disk.unlink(first);
  const file = disk.open(first, { mode: 'createExclusive' });
  try {
    file.append(encodeSegmentHeader({ segmentSeq: 1, firstFrameSeq: 1 }));
    file.datasync();
  } finally {
    file.close();
  }
  disk.syncDir(dir);
  writeMeta({ disk, dir, meta: { firstSegmentSeq: 1, groups: [] } });
}

function readSize(options: { disk: Disk; path: string }): number {
  const file = options.disk.open(options.path, { mode: 'existing' });
  try {
    return file.size();
  } finally {
    file.close();
  }
}

/**
 * Read frames from just after the segment header until the end or the first damage.
 * A valid frame with an unexpected sequence number is corruption wherever it is: frames
 * were lost or spliced, which no crash of ours produces.
 */
function scanFrames(options: {
  bytes: Uint8Array;
  file: string;
  firstFrameSeq: number;
  onRecords: (records: WalRecord[], frameOffset: number) => void;
}): { endOffset: number; nextFrameSeq: number; damage: FrameDamage | null } {
  const { bytes, file } = options;
  let offset = segmentHeaderBytes;
  let seq = options.firstFrameSeq;
  while (offset < bytes.length) {
    const frame = readFrame(bytes, offset);
    if ('damage' in frame) return { endOffset: offset, nextFrameSeq: seq, damage: frame.damage };
    if (frame.seq !== seq) {
      throw new WalCorruptionError({
        code: WalCorruptionCode.FrameSequenceGap,
        file,
        offset,
        detail: `frame ${frame.seq} where ${seq} was expected`,
      });
    }
    let records: WalRecord[];
    try {
      records = decodeRecords(frame.payload);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      throw new WalCorruptionError({
        code: WalCorruptionCode.RecordMalformed,
        file,
        offset: offset + frameHeaderBytes + error.offset,
        detail: error.message,
      });
    }
    options.onRecords(records, offset);
    offset = frame.end;
    seq++;
  }
  return { endOffset: offset, nextFrameSeq: seq, damage: null };
}

function readFrame(
  bytes: Uint8Array,
  offset: number,
): { seq: number; payload: Uint8Array; end: number } | { damage: FrameDamage } {
  const header = decodeFrameHeader(bytes, offset);
  if (header === 'short' || header === 'invalid') {
    return {
      damage: {
        offset,
        code: WalCorruptionCode.FrameHeaderInvalid,
        detail:
          header === 'short'
            ? 'frame header cut short by the end of the file'
            : 'frame header is malformed or fails its checksum',
      },
    };
  }
  const end = offset + frameHeaderBytes + header.payloadBytes;
  if (end > bytes.length) {
    return {
      damage: {
        offset,
        code: WalCorruptionCode.FrameHeaderInvalid,
        detail: `frame payload of ${header.payloadBytes} bytes runs past the end of the file`,
      },
    };
  }
  const payload = bytes.subarray(offset + frameHeaderBytes, end);
  if (crc32(payload) !== header.payloadCrc) {
    return {
      damage: {
        offset,
        code: WalCorruptionCode.FrameChecksumMismatch,
        detail: 'frame payload fails its checksum',
      },
    };
  }
  return { seq: header.seq, payload, end };
}

/** The offset of the first intact frame at or after `from`, whatever its sequence number. */
function findValidFrame(bytes: Uint8Array, from: number): number | null {
  // The magic's bytes, so most offsets are rejected by one comparison.
  const m0 = frameMagic & 0xff;
  for (let offset = Math.max(from, 0); offset + frameHeaderBytes <= bytes.length; offset++) {
    if (bytes[offset] !== m0) continue;
    const frame = readFrame(bytes, offset);
    if (!('damage' in frame)) return offset;
  }
  return null;
}
