import type { HardState, SnapshotMetadata } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { readWholeFile, writeFileAtomic } from '../atomic-file.js';
import { ByteReader, ByteWriter, FormatError } from '../codec.js';
import { crc32 } from '../crc32.js';
import { type Disk, joinPath } from '../disk.js';
import { WalCorruptionCode, WalCorruptionError } from '../errors.js';
import { formatVersion } from './format.js';

/**
 * The WAL's small metadata file, rewritten (atomically) only when old segments are deleted.
 * It names the first live segment and, for every group, the state that the deleted segments
 * held and the live ones may not: hard state, latest snapshot, compaction point. Recovery
 * starts from this checkpoint and replays the live segments over it.
 */
export interface WalMeta {
  readonly firstSegmentSeq: number;
  readonly groups: readonly GroupCheckpoint[];
}

export interface GroupCheckpoint {
  readonly groupId: number;
  readonly hardState: HardState;
  readonly snapshot: SnapshotMetadata;
  readonly compactedThrough: { readonly index: number; readonly term: number };
}

export const metaFileName = 'wal.meta';
/** Plain MessagePack maps (no record extension), so any decoder can read the file. */
const packr = new Packr({ useRecords: false });
/** "CLWM" read as a little-endian u32. */
const metaMagic = 0x4d574c43;
/** magic u32 | version u16 | reserved u16 | payloadLength u32 | payloadCrc u32 */
const metaHeaderBytes = 16;

export function writeMeta(options: { disk: Disk; dir: string; meta: WalMeta }): void {
  const payload = packr.pack(options.meta);
  const w = new ByteWriter(metaHeaderBytes + payload.length);
  w.u32(metaMagic);
  w.u16(formatVersion);
  w.u16(0);
  w.u32(payload.length);
  w.u32(crc32(payload));
  w.raw(payload);
  writeFileAtomic({ disk: options.disk, dir: options.dir, name: metaFileName, data: w.bytes });
}

export function readMeta(options: { disk: Disk; dir: string }): WalMeta {
  const bytes = readWholeFile({ disk: options.disk, path: joinPath(options.dir, metaFileName) });
  const fail = (offset: number, detail: string): never => {
    throw new WalCorruptionError({ code: WalCorruptionCode.MetaInvalid, file: metaFileName, offset, detail });
  };
  try {
    const r = new ByteReader({ bytes });
    if (r.u32('magic') !== metaMagic) fail(0, 'bad magic');
    if (r.u16('version') !== formatVersion) fail(4, 'unknown version');
    r.u16('reserved');
    const length = r.u32('payload length');
    const crc = r.u32('payload crc');
    if (length !== r.remaining) fail(8, `payload length ${length} but ${r.remaining} bytes follow`);
    const payload = bytes.subarray(metaHeaderBytes);
    if (crc32(payload) !== crc) fail(metaHeaderBytes, 'payload checksum mismatch');
    const meta: unknown = packr.unpack(payload);
    if (!isWalMeta(meta)) return fail(metaHeaderBytes, 'payload does not describe WAL metadata');
    return meta;
  } catch (error) {
    if (error instanceof FormatError) return fail(error.offset, error.message);
    throw error;
  }
}

// ---- structural checks: the payload passed its checksum, so these catch bugs and old formats ----

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isHardState(value: unknown): value is HardState {
  return (
    isRecord(value) &&
    isIndex(value.term) &&
    isIndex(value.commit) &&
    (value.vote === null || typeof value.vote === 'string')
  );
}

function isSnapshotMetadata(value: unknown): value is SnapshotMetadata {
  return (
    isRecord(value) &&
    isIndex(value.index) &&
    isIndex(value.term) &&
    isRecord(value.confState) &&
    isStringArray(value.confState.voters) &&
    isStringArray(value.confState.learners)
  );
}

function isGroupCheckpoint(value: unknown): value is GroupCheckpoint {
  return (
    isRecord(value) &&
    isIndex(value.groupId) &&
    value.groupId <= 0xffffffff &&
    isHardState(value.hardState) &&
    isSnapshotMetadata(value.snapshot) &&
    isRecord(value.compactedThrough) &&
    isIndex(value.compactedThrough.index) &&
    isIndex(value.compactedThrough.term)
  );
}

function isWalMeta(value: unknown): value is WalMeta {
  return (
    isRecord(value) &&
    isIndex(value.firstSegmentSeq) &&
    value.firstSegmentSeq >= 1 &&
    Array.isArray(value.groups) &&
    value.groups.every(isGroupCheckpoint)
  );
}
