import { gunzipSync } from 'node:zlib';
import {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  archiveInvalid,
  groupFileName,
  metaFileName,
  sha256Hex,
  sumsFileName,
} from './format.js';
import { readTar } from './tar.js';

export interface ArchiveGroup {
  readonly meta: ArchiveGroupMeta;
  /** The group's FSM snapshot bytes, verified against SHA256SUMS and meta.json. */
  readonly data: Buffer;
}

export interface Archive {
  readonly meta: ArchiveMeta;
  readonly groups: readonly ArchiveGroup[];
}

/**
 * Reads and verifies a gzipped archive: every file's SHA-256 against SHA256SUMS, meta.json's
 * shape and format version, each group file's length and sum against meta.json, and (when
 * given) the group count. Anything else is refused with SNAPSHOT_ARCHIVE_INVALID.
 * Memory: the decompressed archive is held whole, bounded by `archiveBytesMax`.
 */
export function readArchive(
  gzipped: Uint8Array,
  options: { archiveBytesMax: number; groupCount?: number },
): Archive {
  const files = new Map<string, Buffer>();
  for (const { name, data } of readTar(gunzip(gzipped, options.archiveBytesMax))) {
    if (files.has(name)) throw archiveInvalid(`the archive holds ${name} twice`);
    files.set(name, data);
  }
  checkSums(files);
  const meta = parseMeta(need(files, metaFileName));
  if (options.groupCount !== undefined && meta.groups.length !== options.groupCount) {
    throw archiveInvalid(
      `the archive holds ${meta.groups.length} groups; this cluster has ${options.groupCount}`,
    );
  }
  const expected = new Set([metaFileName, sumsFileName, ...meta.groups.map((g) => groupFileName(g.groupId))]);
  for (const name of files.keys()) {
    if (!expected.has(name)) throw archiveInvalid(`the archive holds an unexpected file ${name}`);
  }
  const groups = meta.groups.map((group): ArchiveGroup => {
    const data = need(files, groupFileName(group.groupId));
    if (data.length !== group.bytes || sha256Hex(data) !== group.sha256) {
      throw archiveInvalid(`group ${group.groupId}'s file does not match meta.json`);
    }
    return { meta: group, data };
  });
  return { meta, groups };
}

function gunzip(gzipped: Uint8Array, archiveBytesMax: number): Buffer {
  try {
    return gunzipSync(gzipped, { maxOutputLength: archiveBytesMax });
  } catch (error) {
    const tooLarge = error instanceof RangeError;
    throw archiveInvalid(
      tooLarge
        ? `the archive unpacks to more than archiveBytesMax (${archiveBytesMax} bytes)`
        : `the archive is not a whole gzip stream: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Every file but SHA256SUMS is listed there once, with its sum; nothing else is listed. */
function checkSums(files: ReadonlyMap<string, Buffer>): void {
  const listed = new Map<string, string>();
  for (const line of need(files, sumsFileName).toString('utf8').split('\n')) {
    if (line === '') continue;
    const match = /^([0-9a-f]{64}) {2}(\S+)$/u.exec(line);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw archiveInvalid(`${sumsFileName} has a malformed line`);
    }
    if (listed.has(match[2])) throw archiveInvalid(`${sumsFileName} lists ${match[2]} twice`);
    listed.set(match[2], match[1]);
  }
  for (const [name, data] of files) {
    if (name === sumsFileName) continue;
    const sum = listed.get(name);
    if (sum === undefined) throw archiveInvalid(`${name} has no sum in ${sumsFileName}`);
    if (sum !== sha256Hex(data)) throw archiveInvalid(`${name} does not match its SHA-256 sum`);
    listed.delete(name);
  }
  const missing = [...listed.keys()];
  if (missing.length > 0) throw archiveInvalid(`${sumsFileName} lists missing files: ${missing.join(', ')}`);
}

function parseMeta(data: Buffer): ArchiveMeta {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw archiveInvalid(`${metaFileName} is not JSON`);
  }
  const meta = record(value, metaFileName);
  if (meta.formatVersion !== archiveFormatVersion) {
    throw archiveInvalid(
      `archive format version ${JSON.stringify(meta.formatVersion)} is not ${archiveFormatVersion}, the one this server reads`,
    );
  }
  if (!Array.isArray(meta.groups) || meta.groups.length === 0)
    throw archiveInvalid('meta.json names no groups');
  return {
    formatVersion: archiveFormatVersion,
    clusterId: text(meta.clusterId, 'clusterId'),
    createdAt: text(meta.createdAt, 'createdAt'),
    groups: meta.groups.map((group: unknown, i: number) => parseGroup(group, i)),
  };
}

function parseGroup(value: unknown, position: number): ArchiveGroupMeta {
  const group = record(value, `groups[${position}]`);
  const groupId = count(group.groupId, 'groupId');
  if (groupId !== position) throw archiveInvalid(`meta.json lists group ${groupId} at position ${position}`);
  const sha256 = text(group.sha256, 'sha256');
  if (!/^[0-9a-f]{64}$/u.test(sha256)) throw archiveInvalid(`group ${groupId}'s sha256 is not hex`);
  return {
    groupId,
    index: count(group.index, 'index'),
    term: count(group.term, 'term'),
    voters: names(group.voters, 'voters'),
    learners: names(group.learners, 'learners'),
    bytes: count(group.bytes, 'bytes'),
    sha256,
    keys: count(group.keys, 'keys'),
  };
}

function need(files: ReadonlyMap<string, Buffer>, name: string): Buffer {
  const data = files.get(name);
  if (data === undefined) throw archiveInvalid(`the archive has no ${name}`);
  return data;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw archiveInvalid(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw archiveInvalid(`meta.json ${what} must be a string`);
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw archiveInvalid(`meta.json ${what} must be an integer >= 0`);
  }
  return value;
}

function names(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw archiveInvalid(`meta.json ${what} must be an array of strings`);
  }
  return value as string[];
}
