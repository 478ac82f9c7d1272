import { createHash } from 'node:crypto';
import { ConclaveError } from '../errors.js';

/**
 * The archive layout's version, in meta.json; a reader refuses any other. Version 2 stores
 * each group's state as bounded parts, so neither side ever holds a whole group's state.
 */
export const archiveFormatVersion = 2;

export const metaFileName = 'meta.json';
export const sumsFileName = 'SHA256SUMS';

/**
 * Largest meta.json a reader accepts (bytes). It lists each group once (about 300 bytes
 * each), so 4 MiB is far past any real cluster; the bound keeps a forged header from making
 * the reader buffer gigabytes.
 */
export const metaBytesMax = 4 * 1024 * 1024;

/**
 * Largest SHA256SUMS (bytes), written or read. One line per part is about 90 bytes, so this
 * admits about 180,000 parts: 170 GiB of state at the largest part size. Both sides keep a
 * part's sum until the end (SHA256SUMS comes last), so this also bounds that memory.
 */
export const sumsBytesMax = 16 * 1024 * 1024;

/** Parts in one group: the name's sequence number has 6 digits. */
export const groupPartsMax = 1_000_000;

/** One group's entry in meta.json. */
export interface ArchiveGroupMeta {
  readonly groupId: number;
  /** The applied index the group's state was captured at. */
  readonly index: number;
  /** The term of the server that captured it, when it did. */
  readonly term: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  /** KV entries in the group's state. */
  readonly keys: number;
  /** How many part files the group has (`group-<g>/<seq>.part`, seq 0 .. parts-1). */
  readonly parts: number;
  /**
   * Length and SHA-256 (hex) of the concatenation of the group's parts: the group's FSM
   * snapshot, as the restore commands announce it.
   */
  readonly bytes: number;
  readonly sha256: string;
}

export interface ArchiveMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  /** ISO 8601, UTC. */
  readonly createdAt: string;
  /** Sorted by groupId, one per group of the cluster: 0, 1, ... */
  readonly groups: readonly ArchiveGroupMeta[];
}

/** One group's state as the archive writer takes it: its identity, then its parts in order. */
export interface GroupSource {
  readonly groupId: number;
  readonly index: number;
  readonly term: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly keys: number;
  /**
   * The FSM snapshot's parts (fsm/snapshot-parts.ts), each at most snapshotPartBytesMax.
   * Pulled one at a time, only as fast as the archive's consumer reads.
   */
  readonly parts: AsyncIterable<Uint8Array>;
}

/** `group-3/000012.part`. */
export function partFileName(options: { groupId: number; seq: number }): string {
  return `group-${options.groupId}/${String(options.seq).padStart(6, '0')}.part`;
}

/** A part file's name: group id without leading zeros, seq of exactly 6 digits. */
const partNamePattern = /^group-(0|[1-9]\d{0,8})\/(\d{6})\.part$/u;

/** A format 1 group file (`group-<g>.snap`), recognized only to refuse it with advice. */
const formatOneNamePattern = /^group-\d+\.snap$/u;

export function parsePartFileName(name: string): { groupId: number; seq: number } | null {
  const match = partNamePattern.exec(name);
  if (match === null || match[1] === undefined || match[2] === undefined) return null;
  return { groupId: Number(match[1]), seq: Number(match[2]) };
}

export function isFormatOneFile(name: string): boolean {
  return formatOneNamePattern.test(name);
}

/** The line SHA256SUMS holds for one file, in `sha256sum` format. */
export function sumLine(options: { sha256: string; name: string }): string {
  return `${options.sha256}  ${options.name}\n`;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function archiveInvalid(message: string): ConclaveError {
  return new ConclaveError({ code: 'SNAPSHOT_ARCHIVE_INVALID', message });
}
