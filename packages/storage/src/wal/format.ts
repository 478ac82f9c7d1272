import {
  assert,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type SnapshotMetadata,
} from '@conclave/raft';
import { ByteReader, ByteWriter, FormatError, utf8Bytes } from '../codec.js';
import { crc32 } from '../crc32.js';
import { formatFrameBytesMax } from '../limits.js';

/**
 * The WAL's on-disk format (docs/storage.md has the full picture).
 *
 * A segment file is a 32-byte header, then frames. A frame is one appendBatch write: a
 * 24-byte header with its own checksum, then a payload of records, with a checksum over
 * the payload. Every record is `type u8 | groupId u32 | bodyLength u32 | body`.
 * All integers are little-endian; u64 values are JavaScript safe integers.
 */

export const formatVersion = 1;

/** "CLWS" read as a little-endian u32. */
export const segmentMagic = 0x53574c43;
/** "CLWF" read as a little-endian u32. */
export const frameMagic = 0x46574c43;

/** magic u32 | version u16 | flags u16 | segmentSeq u64 | firstFrameSeq u64 | reserved u32 | headerCrc u32 */
export const segmentHeaderBytes = 32;
/** magic u32 | payloadLength u32 | frameSeq u64 | payloadCrc u32 | headerCrc u32 */
export const frameHeaderBytes = 24;
/** type u8 | groupId u32 | bodyLength u32 */
export const recordHeaderBytes = 9;

export const RecordType = {
  /** Entries of one group, contiguous; the first continues the group's log exactly. */
  Entries: 1,
  HardState: 2,
  /** A snapshot's metadata: `installed` replaces the whole log, `taken` only records it. */
  Snapshot: 3,
  /** Drop the group's entries at and after `fromIndex` (a conflicting suffix). */
  TruncateSuffix: 4,
  /** Drop the group's entries up to and including `throughIndex` (covered by a snapshot). */
  Compact: 5,
} as const;

export type SnapshotMode = 'installed' | 'taken';

export type WalRecord =
  | { readonly type: 'entries'; readonly groupId: number; readonly entries: readonly Entry[] }
  | { readonly type: 'hardState'; readonly groupId: number; readonly hardState: HardState }
  | {
      readonly type: 'snapshot';
      readonly groupId: number;
      readonly mode: SnapshotMode;
      readonly metadata: SnapshotMetadata;
    }
  | { readonly type: 'truncateSuffix'; readonly groupId: number; readonly fromIndex: number }
  | { readonly type: 'compact'; readonly groupId: number; readonly throughIndex: number };

/** Bytes of one entry inside an entries record: index u64 | term u64 | type u8 | dataLength u32 | data. */
export function entryRecordBytes(entry: Entry): number {
  return 21 + entry.data.length;
}

function confStateBytes(confState: ConfState): number {
  let n = 4;
  for (const id of confState.voters) n += 2 + utf8Bytes(id);
  for (const id of confState.learners) n += 2 + utf8Bytes(id);
  return n;
}

function bodyBytes(record: WalRecord): number {
  switch (record.type) {
    case 'entries': {
      let n = 4;
      for (const entry of record.entries) n += entryRecordBytes(entry);
      return n;
    }
    case 'hardState':
      return 17 + (record.hardState.vote === null ? 0 : 2 + utf8Bytes(record.hardState.vote));
    case 'snapshot':
      return 17 + confStateBytes(record.metadata.confState);
    case 'truncateSuffix':
    case 'compact':
      return 8;
  }
}

export function recordBytes(record: WalRecord): number {
  return recordHeaderBytes + bodyBytes(record);
}

export function encodeRecord(w: ByteWriter, record: WalRecord): void {
  const body = bodyBytes(record);
  const start = w.offset;
  w.u8(typeCode(record));
  w.u32(record.groupId);
  w.u32(body);
  switch (record.type) {
    case 'entries':
      w.u32(record.entries.length);
      for (const entry of record.entries) {
        w.u64(entry.index);
        w.u64(entry.term);
        w.u8(entry.type);
        w.u32(entry.data.length);
        w.raw(entry.data);
      }
      break;
    case 'hardState': {
      const { term, vote, commit } = record.hardState;
      w.u64(term);
      w.u64(commit);
      w.u8(vote === null ? 0 : 1);
      if (vote !== null) w.string16(vote);
      break;
    }
    case 'snapshot': {
      const { index, term, confState } = record.metadata;
      w.u8(record.mode === 'installed' ? 1 : 2);
      w.u64(index);
      w.u64(term);
      w.u16(confState.voters.length);
      for (const id of confState.voters) w.string16(id);
      w.u16(confState.learners.length);
      for (const id of confState.learners) w.string16(id);
      break;
    }
    case 'truncateSuffix':
      w.u64(record.fromIndex);
      break;
    case 'compact':
      w.u64(record.throughIndex);
      break;
  }
  assert(w.offset - start === recordHeaderBytes + body, () => `record ${record.type} size mismatch`);
}

function typeCode(record: WalRecord): number {
  switch (record.type) {
    case 'entries':
      return RecordType.Entries;
    case 'hardState':
      return RecordType.HardState;
    case 'snapshot':
      return RecordType.Snapshot;
    case 'truncateSuffix':
      return RecordType.TruncateSuffix;
    case 'compact':
      return RecordType.Compact;
  }
}

/** Decode every record of a frame payload; a FormatError carries the offset within it. */
export function decodeRecords(payload: Uint8Array): WalRecord[] {
  const r = new ByteReader({ bytes: payload });
  const out: WalRecord[] = [];
  while (r.remaining > 0) {
    const start = r.offset;
    const type = r.u8('record type');
    const groupId = r.u32('record groupId');
    const body = r.u32('record body length');
    if (body > r.remaining) {
      throw new FormatError({ offset: start, detail: `record body of ${body} bytes runs past the frame` });
    }
    const end = r.offset + body;
    const br = new ByteReader({ bytes: payload, start: r.offset, end });
    out.push(decodeBody(br, { type, groupId, start }));
    if (br.remaining !== 0) {
      throw new FormatError({
        offset: start,
        detail: `record type ${type} has ${br.remaining} trailing bytes`,
      });
    }
    r.offset = end;
  }
  return out;
}

function decodeBody(r: ByteReader, options: { type: number; groupId: number; start: number }): WalRecord {
  const { type, groupId } = options;
  switch (type) {
    case RecordType.Entries: {
      const count = r.u32('entry count');
      const entries: Entry[] = [];
      for (let i = 0; i < count; i++) {
        const index = r.u64('entry index');
        const term = r.u64('entry term');
        const entryType = r.u8('entry type');
        if (entryType !== 0 && entryType !== 1) {
          throw new FormatError({ offset: r.offset - 1, detail: `unknown entry type ${entryType}` });
        }
        const length = r.u32('entry data length');
        entries.push({ index, term, type: entryType as EntryType, data: r.bytes(length, 'entry data') });
      }
      return { type: 'entries', groupId, entries };
    }
    case RecordType.HardState: {
      const term = r.u64('hard state term');
      const commit = r.u64('hard state commit');
      const hasVote = r.u8('hard state vote flag');
      if (hasVote > 1) throw new FormatError({ offset: r.offset - 1, detail: `bad vote flag ${hasVote}` });
      const vote = hasVote === 1 ? r.string16('hard state vote') : null;
      return { type: 'hardState', groupId, hardState: { term, vote, commit } };
    }
    case RecordType.Snapshot: {
      const modeCode = r.u8('snapshot mode');
      if (modeCode !== 1 && modeCode !== 2) {
        throw new FormatError({ offset: r.offset - 1, detail: `unknown snapshot mode ${modeCode}` });
      }
      const index = r.u64('snapshot index');
      const term = r.u64('snapshot term');
      const voters: string[] = [];
      const votersCount = r.u16('voter count');
      for (let i = 0; i < votersCount; i++) voters.push(r.string16('voter'));
      const learners: string[] = [];
      const learnersCount = r.u16('learner count');
      for (let i = 0; i < learnersCount; i++) learners.push(r.string16('learner'));
      return {
        type: 'snapshot',
        groupId,
        mode: modeCode === 1 ? 'installed' : 'taken',
        metadata: { index, term, confState: { voters, learners } },
      };
    }
    case RecordType.TruncateSuffix:
      return { type: 'truncateSuffix', groupId, fromIndex: r.u64('truncate index') };
    case RecordType.Compact:
      return { type: 'compact', groupId, throughIndex: r.u64('compact index') };
    default:
      throw new FormatError({ offset: options.start, detail: `unknown record type ${type}` });
  }
}

// ---- segment header ----

export interface SegmentHeader {
  readonly segmentSeq: number;
  /** The sequence number the first frame of this segment carries. */
  readonly firstFrameSeq: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const w = new ByteWriter(segmentHeaderBytes);
  w.u32(segmentMagic);
  w.u16(formatVersion);
  w.u16(0);
  w.u64(header.segmentSeq);
  w.u64(header.firstFrameSeq);
  w.u32(0);
  w.u32(crc32(w.bytes.subarray(0, w.offset)));
  return w.bytes;
}

/** Null when the header is short, fails its checksum, or has the wrong magic or version. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | null {
  if (bytes.length < segmentHeaderBytes) return null;
  const r = new ByteReader({ bytes, end: segmentHeaderBytes });
  const magic = r.u32('magic');
  const version = r.u16('version');
  r.u16('flags');
  const segmentSeq = safeU64(r);
  const firstFrameSeq = safeU64(r);
  r.u32('reserved');
  const crc = r.u32('header crc');
  if (magic !== segmentMagic || version !== formatVersion || segmentSeq === null || firstFrameSeq === null)
    return null;
  if (crc !== crc32(bytes.subarray(0, segmentHeaderBytes - 4))) return null;
  return { segmentSeq, firstFrameSeq };
}

// ---- frames ----

export interface FrameHeader {
  readonly payloadBytes: number;
  readonly seq: number;
  readonly payloadCrc: number;
}

/** One frame: header then the records' bytes. */
export function encodeFrame(options: {
  seq: number;
  records: readonly WalRecord[];
  payloadBytes: number;
}): Buffer {
  const { seq, records, payloadBytes } = options;
  assert(payloadBytes <= formatFrameBytesMax, () => `frame of ${payloadBytes} bytes over the format maximum`);
  const w = new ByteWriter(frameHeaderBytes + payloadBytes);
  w.offset = frameHeaderBytes;
  for (const record of records) encodeRecord(w, record);
  assert(w.offset === frameHeaderBytes + payloadBytes, 'frame payload size mismatch');
  const payloadCrc = crc32(w.bytes.subarray(frameHeaderBytes));
  const end = w.offset;
  w.offset = 0;
  w.u32(frameMagic);
  w.u32(payloadBytes);
  w.u64(seq);
  w.u32(payloadCrc);
  w.u32(crc32(w.bytes.subarray(0, frameHeaderBytes - 4)));
  w.offset = end;
  return w.bytes;
}

/**
 * The frame header at `offset`, or why not: `short` (fewer than 24 bytes left) or `invalid`
 * (wrong magic, failed header checksum, or a length over the format maximum).
 */
export function decodeFrameHeader(bytes: Uint8Array, offset: number): FrameHeader | 'short' | 'invalid' {
  if (bytes.length - offset < frameHeaderBytes) return 'short';
  const r = new ByteReader({ bytes, start: offset, end: offset + frameHeaderBytes });
  const magic = r.u32('magic');
  const payloadBytes = r.u32('payload length');
  const seq = safeU64(r);
  const payloadCrc = r.u32('payload crc');
  const headerCrc = r.u32('header crc');
  if (magic !== frameMagic || seq === null || payloadBytes > formatFrameBytesMax) return 'invalid';
  if (headerCrc !== crc32(bytes.subarray(offset, offset + frameHeaderBytes - 4))) return 'invalid';
  return { payloadBytes, seq, payloadCrc };
}

function safeU64(r: ByteReader): number | null {
  try {
    return r.u64('u64');
  } catch (error) {
    if (error instanceof FormatError) return null;
    throw error;
  }
}

export function segmentFileName(segmentSeq: number): string {
  return `${String(segmentSeq).padStart(20, '0')}.wal`;
}

/** The sequence number of a segment file name, or null for any other name. */
export function parseSegmentFileName(name: string): number | null {
  const match = /^(\d{20})\.wal$/.exec(name);
  if (match === null) return null;
  const seq = Number(match[1]);
  return Number.isSafeInteger(seq) ? seq : null;
}
