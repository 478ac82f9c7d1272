import { assert, type Snapshot, type SnapshotMetadata } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { type Logger, pino } from 'pino';
import { crc32InSlices, writeNewFileDurably } from './background-write.js';
import { ByteReader, ByteWriter, FormatError } from './codec.js';
import { crc32 } from './crc32.js';
import { type Disk, type DiskFile, joinPath } from './disk.js';
import { DiskError, SnapshotCorruptionCode, SnapshotCorruptionError, StorageLimitError } from './errors.js';
import { resolveStorageLimits, type StorageLimits } from './limits.js';

/**
 * Snapshots on disk: one file per group snapshot, `g<groupId>-<index>.snap`, with padded
 * numbers so names sort by index.
 *
 * File: magic u32 "CLSN" | version u16 | reserved u16 | metadataLength u32 | dataCrc u32 |
 * dataLength u64 | metadata (MessagePack: groupId, index, term, confState) | headerCrc u32
 * (over everything before it) | data.
 *
 * Written to a temporary file, fsynced, renamed into place, directory fsynced: a crash
 * leaves the whole snapshot or none of it. Read back with one read into the snapshot's buffer
 * (on the thread pool with `loadAsync`) and verified, header then data checksum, before any
 * byte is returned. `prepareInBackground` writes the temporary file off the event loop (see
 * background-write.ts) and leaves the rename to the caller's turn.
 */

const snapshotMagic = 0x4e534c43;
const snapshotVersion = 1;
const fixedHeaderBytes = 24;
const packr = new Packr({ useRecords: false });
const silentLogger: Logger = pino({ level: 'silent' });

export interface StoredSnapshot {
  readonly groupId: number;
  readonly index: number;
  readonly file: string;
}

/**
 * A snapshot whose temporary file is durable but not yet in place. Exactly one of publish or
 * discard is called, synchronously, in the turn that decides (see DurableStorage).
 */
export interface PreparedSnapshot {
  /** Rename into place and fsync the directory: the snapshot is now stored. */
  publish(): void;
  /** Remove the temporary file (tolerating its removal by a store opened since). */
  discard(): void;
}

/**
 * Temporary files of background writes are named apart from `save`'s and numbered per write,
 * so no writer ever removes another's file: not `save` for an installed snapshot at the same
 * index, nor a write a closed store abandoned (still running) and one of a store opened since.
 */
const backgroundTempSuffix = '.bg.tmp';
let backgroundWrites = 0;

export function snapshotFileName(options: { groupId: number; index: number }): string {
  return `g${String(options.groupId).padStart(10, '0')}-${String(options.index).padStart(20, '0')}.snap`;
}

function parseSnapshotFileName(name: string): { groupId: number; index: number } | null {
  const match = /^g(\d{10})-(\d{20})\.snap$/.exec(name);
  if (match === null) return null;
  const groupId = Number(match[1]);
  const index = Number(match[2]);
  return Number.isSafeInteger(groupId) && Number.isSafeInteger(index) ? { groupId, index } : null;
}

export class SnapshotStore {
  readonly #disk: Disk;
  readonly #dir: string;
  readonly #limits: StorageLimits;
  readonly #logger: Logger;

  private constructor(options: { disk: Disk; dir: string; limits: StorageLimits; logger: Logger }) {
    this.#disk = options.disk;
    this.#dir = options.dir;
    this.#limits = options.limits;
    this.#logger = options.logger;
  }

  /** Open (creating) the store in `dir`, removing temporary files a crash left behind. */
  static open(options: {
    disk: Disk;
    dir: string;
    limits?: Partial<StorageLimits>;
    logger?: Logger;
  }): SnapshotStore {
    const { disk, dir } = options;
    disk.mkdir(dir);
    // Both `save`'s `<name>.tmp` and background writes' `<name>.<n>.bg.tmp`.
    const leftovers = disk.readdir(dir).filter((name) => name.endsWith('.tmp'));
    for (const name of leftovers) disk.unlink(joinPath(dir, name));
    if (leftovers.length > 0) disk.syncDir(dir);
    return new SnapshotStore({
      disk,
      dir,
      limits: resolveStorageLimits(options.limits),
      logger: options.logger ?? silentLogger,
    });
  }

  /** The groups with at least one snapshot file. */
  groupIds(): number[] {
    const ids = new Set<number>();
    for (const name of this.#disk.readdir(this.#dir)) {
      const parsed = parseSnapshotFileName(name);
      if (parsed !== null) ids.add(parsed.groupId);
    }
    return [...ids].sort((a, b) => a - b);
  }

  /** A group's snapshot files, newest first. */
  list(groupId: number): StoredSnapshot[] {
    const out: StoredSnapshot[] = [];
    for (const name of this.#disk.readdir(this.#dir)) {
      const parsed = parseSnapshotFileName(name);
      if (parsed?.groupId === groupId) out.push({ ...parsed, file: name });
    }
    return out.sort((a, b) => b.index - a.index);
  }

  /** Write a snapshot durably (temp, fsync, rename, fsync dir). Does not prune: see `prune`. */
  save(options: { groupId: number; snapshot: Snapshot }): void {
    const { groupId, snapshot } = options;
    this.#checkSize(options);
    const header = encodeHeader({
      groupId,
      metadata: snapshot.metadata,
      data: snapshot.data,
      dataCrc: crc32(snapshot.data),
    });
    const name = snapshotFileName({ groupId, index: snapshot.metadata.index });
    const temp = joinPath(this.#dir, `${name}.tmp`);
    if (this.#disk.exists(temp)) this.#disk.unlink(temp);
    const file = this.#disk.open(temp, { mode: 'createExclusive' });
    try {
      file.append(header);
      file.append(snapshot.data);
      file.sync();
    } finally {
      file.close();
    }
    this.#disk.rename({ from: temp, to: joinPath(this.#dir, name) });
    this.#disk.syncDir(this.#dir);
  }

  /**
   * Write a snapshot's temporary file off the event loop (checksum in slices, bytes and fsync
   * through the thread pool on the real disk). Resolves once that file is durable; nothing
   * is in place until `publish`. The caller keeps at most one of these in flight per group.
   */
  async prepareInBackground(options: { groupId: number; snapshot: Snapshot }): Promise<PreparedSnapshot> {
    const { groupId, snapshot } = options;
    this.#checkSize(options);
    const dataCrc = await crc32InSlices(snapshot.data);
    const header = encodeHeader({ groupId, metadata: snapshot.metadata, data: snapshot.data, dataCrc });
    const name = snapshotFileName({ groupId, index: snapshot.metadata.index });
    const temp = joinPath(this.#dir, `${name}.${++backgroundWrites}${backgroundTempSuffix}`);
    await writeNewFileDurably({ disk: this.#disk, path: temp, parts: [header, snapshot.data] });
    return {
      publish: () => {
        this.#disk.rename({ from: temp, to: joinPath(this.#dir, name) });
        this.#disk.syncDir(this.#dir);
      },
      discard: () => {
        try {
          this.#disk.unlink(temp);
        } catch (error) {
          if (!(error instanceof DiskError && error.code === 'ENOENT')) throw error;
        }
      },
    };
  }

  #checkSize(options: { groupId: number; snapshot: Snapshot }): void {
    const { data, metadata } = options.snapshot;
    assert(metadata.index > 0, 'snapshot index 0 is the bootstrap marker and has no file');
    if (data.length > this.#limits.snapshotBytesMax) {
      throw new StorageLimitError({
        limit: 'snapshotBytesMax',
        valueBytes: data.length,
        maxBytes: this.#limits.snapshotBytesMax,
        what: `snapshot ${metadata.index} of group ${options.groupId}`,
      });
    }
  }

  /**
   * Load and verify snapshot `index` of `groupId`. Throws SnapshotCorruptionError when the
   * file is damaged, and a DiskError (code ENOENT) when it does not exist.
   */
  load(options: { groupId: number; index: number }): Snapshot {
    const file = this.#disk.open(joinPath(this.#dir, snapshotFileName(options)), { mode: 'existing' });
    try {
      const layout = this.#readHeader({ ...options, file });
      return verifiedData(layout, file.read({ offset: layout.headerBytes, length: layout.dataBytes }));
    } finally {
      file.close();
    }
  }

  /**
   * `load` with the data read on the thread pool when the disk can (`readAsync`), so that the
   * files of several groups are read at once; the checksum is still verified before the
   * bytes are returned. Same results and errors as `load`.
   */
  async loadAsync(options: { groupId: number; index: number }): Promise<Snapshot> {
    const file = this.#disk.open(joinPath(this.#dir, snapshotFileName(options)), { mode: 'existing' });
    try {
      const layout = this.#readHeader({ ...options, file });
      const range = { offset: layout.headerBytes, length: layout.dataBytes };
      const data = file.readAsync === undefined ? file.read(range) : await file.readAsync(range);
      return verifiedData(layout, data);
    } finally {
      file.close();
    }
  }

  /** Read and verify a snapshot file's header: where its data lies and what it must hash to. */
  #readHeader(options: { groupId: number; index: number; file: DiskFile }): SnapshotLayout {
    const { file } = options;
    const name = snapshotFileName(options);
    const fail = (code: SnapshotCorruptionCode, offset: number, detail: string): never => {
      throw new SnapshotCorruptionError({ code, file: name, offset, detail });
    };
    const size = file.size();
    const fixed = file.read({ offset: 0, length: fixedHeaderBytes });
    let metaBytes = 0;
    let dataCrc = 0;
    let dataBytes = 0;
    try {
      const r = new ByteReader({ bytes: fixed });
      if (r.u32('magic') !== snapshotMagic) fail(SnapshotCorruptionCode.HeaderInvalid, 0, 'bad magic');
      if (r.u16('version') !== snapshotVersion)
        fail(SnapshotCorruptionCode.HeaderInvalid, 4, 'unknown version');
      r.u16('reserved');
      metaBytes = r.u32('metadata length');
      dataCrc = r.u32('data crc');
      dataBytes = r.u64('data length');
    } catch (error) {
      if (error instanceof FormatError)
        fail(SnapshotCorruptionCode.HeaderInvalid, error.offset, error.message);
      throw error;
    }
    // Bounds before allocating anything a corrupt length could make huge.
    if (metaBytes > 1024 * 1024 || fixedHeaderBytes + metaBytes + 4 > size) {
      fail(SnapshotCorruptionCode.HeaderInvalid, 8, `metadata length ${metaBytes} does not fit the file`);
    }
    const headerBytes = fixedHeaderBytes + metaBytes + 4;
    const header = file.read({ offset: 0, length: headerBytes });
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    if (view.getUint32(headerBytes - 4, true) !== crc32(header.subarray(0, headerBytes - 4))) {
      fail(SnapshotCorruptionCode.HeaderInvalid, headerBytes - 4, 'header checksum mismatch');
    }
    const metadata = decodeMetadata(header.subarray(fixedHeaderBytes, headerBytes - 4));
    if (metadata === null)
      return fail(SnapshotCorruptionCode.HeaderInvalid, fixedHeaderBytes, 'metadata does not parse');
    if (metadata.groupId !== options.groupId || metadata.index !== options.index) {
      fail(
        SnapshotCorruptionCode.NameMismatch,
        fixedHeaderBytes,
        `header says group ${metadata.groupId} index ${metadata.index}`,
      );
    }
    if (dataBytes > this.#limits.snapshotBytesMax || headerBytes + dataBytes !== size) {
      fail(
        SnapshotCorruptionCode.LengthMismatch,
        16,
        `data length ${dataBytes} + header ${headerBytes} != file size ${size} (or over snapshotBytesMax)`,
      );
    }
    const { index, term, confState } = metadata;
    return { file: name, metadata: { index, term, confState }, headerBytes, dataBytes, dataCrc };
  }

  /** Keep `snapshotsRetainedMax` snapshots of the group, newest first; never the one at `keepIndex`. */
  prune(options: { groupId: number; keepIndex: number }): StoredSnapshot[] {
    const all = this.list(options.groupId);
    const removed: StoredSnapshot[] = [];
    all.forEach((stored, i) => {
      if (i >= this.#limits.snapshotsRetainedMax && stored.index !== options.keepIndex) removed.push(stored);
    });
    this.#removeFiles(removed);
    return removed;
  }

  /** Delete snapshots newer than `index`: written before a crash, never recorded in the WAL. */
  removeNewerThan(options: { groupId: number; index: number }): StoredSnapshot[] {
    const removed = this.list(options.groupId).filter((s) => s.index > options.index);
    this.#removeFiles(removed);
    if (removed.length > 0)
      this.#logger.warn({ groupId: options.groupId, removed }, 'removed snapshots the WAL never recorded');
    return removed;
  }

  /** Move a damaged snapshot aside (kept for inspection, ignored from now on). */
  quarantine(options: { groupId: number; index: number }): string {
    const name = snapshotFileName(options);
    const target = `${name}.corrupt`;
    this.#disk.rename({ from: joinPath(this.#dir, name), to: joinPath(this.#dir, target) });
    this.#disk.syncDir(this.#dir);
    this.#logger.error({ file: name, movedTo: target }, 'quarantined a corrupt snapshot');
    return target;
  }

  #removeFiles(files: readonly StoredSnapshot[]): void {
    for (const stored of files) this.#disk.unlink(joinPath(this.#dir, stored.file));
    if (files.length > 0) this.#disk.syncDir(this.#dir);
  }
}

/** A snapshot file whose header was verified: its metadata, and where its data lies. */
interface SnapshotLayout {
  readonly file: string;
  readonly metadata: SnapshotMetadata;
  readonly headerBytes: number;
  readonly dataBytes: number;
  readonly dataCrc: number;
}

/**
 * The data as read, in one read straight into its own buffer and checksummed once in place:
 * reading in chunks and copying each into the buffer cost a second pass over every byte
 * (about 0.4 s per GiB at start-up). The bytes are returned only once the checksum matches.
 */
function verifiedData(layout: SnapshotLayout, data: Uint8Array): Snapshot {
  const fail = (code: SnapshotCorruptionCode, offset: number, detail: string): never => {
    throw new SnapshotCorruptionError({ code, file: layout.file, offset, detail });
  };
  if (data.length !== layout.dataBytes)
    fail(SnapshotCorruptionCode.LengthMismatch, layout.headerBytes + data.length, 'file ended early');
  if (crc32(data) !== layout.dataCrc)
    fail(SnapshotCorruptionCode.DataChecksumMismatch, layout.headerBytes, 'data checksum mismatch');
  return { metadata: layout.metadata, data };
}

/** The file's header: everything before the data, with its own checksum at the end. */
function encodeHeader(options: {
  groupId: number;
  metadata: SnapshotMetadata;
  data: Uint8Array;
  dataCrc: number;
}): Uint8Array {
  const { groupId, metadata, data } = options;
  const meta = packr.pack({
    groupId,
    index: metadata.index,
    term: metadata.term,
    confState: metadata.confState,
  });
  const w = new ByteWriter(fixedHeaderBytes + meta.length + 4);
  w.u32(snapshotMagic);
  w.u16(snapshotVersion);
  w.u16(0);
  w.u32(meta.length);
  w.u32(options.dataCrc);
  w.u64(data.length);
  w.raw(meta);
  w.u32(crc32(w.bytes.subarray(0, w.offset)));
  return w.bytes;
}

function decodeMetadata(bytes: Uint8Array): (SnapshotMetadata & { groupId: number }) | null {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const confState = v.confState as Record<string, unknown> | null | undefined;
  const isIds = (x: unknown): x is string[] => Array.isArray(x) && x.every((id) => typeof id === 'string');
  if (
    typeof v.groupId !== 'number' ||
    typeof v.index !== 'number' ||
    typeof v.term !== 'number' ||
    typeof confState !== 'object' ||
    confState === null ||
    !isIds(confState.voters) ||
    !isIds(confState.learners)
  ) {
    return null;
  }
  return {
    groupId: v.groupId,
    index: v.index,
    term: v.term,
    confState: { voters: confState.voters, learners: confState.learners },
  };
}
