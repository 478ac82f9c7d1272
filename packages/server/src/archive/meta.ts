import {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  archiveInvalid,
  metaFileName,
  sumsFileName,
} from './format.js';

/** SHA256SUMS's lines: each file's name and sum, each name once. */
export function parseSums(data: Buffer): Map<string, string> {
  const listed = new Map<string, string>();
  for (const line of data.toString('utf8').split('\n')) {
    if (line === '') continue;
    const match = /^([0-9a-f]{64}) {2}(\S+)$/u.exec(line);
    if (match === null || match[1] === undefined || match[2] === undefined) {
      throw archiveInvalid(`${sumsFileName} has a malformed line`);
    }
    if (listed.has(match[2])) throw archiveInvalid(`${sumsFileName} lists ${match[2]} twice`);
    listed.set(match[2], match[1]);
  }
  return listed;
}

/** meta.json, its shape and format version checked. */
export function parseMeta(data: Buffer): ArchiveMeta {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw archiveInvalid(`${metaFileName} is not JSON`);
  }
  const meta = record(value, metaFileName);
  if (meta.formatVersion !== archiveFormatVersion) throw wrongVersion(meta.formatVersion);
  if (!Array.isArray(meta.groups) || meta.groups.length === 0) {
    throw archiveInvalid(`${metaFileName} names no groups`);
  }
  return {
    formatVersion: archiveFormatVersion,
    clusterId: text(meta.clusterId, 'clusterId'),
    createdAt: text(meta.createdAt, 'createdAt'),
    groups: meta.groups.map((group: unknown, i: number) => parseGroup(group, i)),
  };
}

/** Format 1 was a pre-release layout; nothing but `save` with this version makes a new one. */
export function wrongVersion(version: unknown): Error {
  const advice =
    version === 1
      ? 'format 1 is a pre-release layout this version no longer reads: save the snapshot again with this version'
      : 'save the snapshot again with this version, or inspect it with the version that wrote it';
  return archiveInvalid(
    `archive format version ${JSON.stringify(version)} is not ${archiveFormatVersion}, the one this version reads: ${advice}`,
  );
}

function parseGroup(value: unknown, position: number): ArchiveGroupMeta {
  const group = record(value, `groups[${position}]`);
  const groupId = count(group.groupId, 'groupId');
  if (groupId !== position)
    throw archiveInvalid(`${metaFileName} lists group ${groupId} at position ${position}`);
  const sha256 = text(group.sha256, 'sha256');
  if (!/^[0-9a-f]{64}$/u.test(sha256)) throw archiveInvalid(`group ${groupId}'s sha256 is not hex`);
  return {
    groupId,
    index: count(group.index, 'index'),
    term: count(group.term, 'term'),
    voters: names(group.voters, 'voters'),
    learners: names(group.learners, 'learners'),
    keys: count(group.keys, 'keys'),
    parts: count(group.parts, 'parts'),
    bytes: count(group.bytes, 'bytes'),
    sha256,
  };
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw archiveInvalid(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw archiveInvalid(`${metaFileName} ${what} must be a string`);
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw archiveInvalid(`${metaFileName} ${what} must be an integer >= 0`);
  }
  return value;
}

function names(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw archiveInvalid(`${metaFileName} ${what} must be an array of strings`);
  }
  return value as string[];
}
