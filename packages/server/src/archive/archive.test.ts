import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { FsmDriver } from '../fsm/testing/driver.js';
import { archiveFormatVersion, type GroupCapture, sha256Hex } from './format.js';
import { readArchive } from './read.js';
import { checkGroupState, snapshotKeyCount } from './state.js';
import { readTar, tarHeader, tarPadding, tarTrailer } from './tar.js';
import { archiveStream } from './write.js';

const archiveBytesMax = 64 * 1024 * 1024;

function capture(groupId: number, keys: number): GroupCapture {
  const d = new FsmDriver();
  d.createSession(`s${groupId}`, { node: 'n1', behavior: 'release' });
  for (let i = 0; i < keys; i++) d.set(`app${i % 3}/k${i}`, `value-${groupId}-${i}`, i);
  const data = d.fsm.snapshot();
  return { groupId, index: d.fsm.appliedIndex(), term: 3, voters: ['s1', 's2'], learners: [], keys, data };
}

async function* captures(list: readonly GroupCapture[]): AsyncGenerator<GroupCapture> {
  for (const group of list) yield group;
}

async function archiveOf(list: readonly GroupCapture[]): Promise<Buffer> {
  return buffer(
    archiveStream({ clusterId: 'c1', createdAtMs: Date.UTC(2026, 0, 2), groups: captures(list) }),
  );
}

function expectInvalid(run: () => unknown, message: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConclaveError);
    expect((error as ConclaveError).code).toBe('SNAPSHOT_ARCHIVE_INVALID');
    expect((error as ConclaveError).message).toMatch(message);
    return;
  }
  throw new Error('the archive was accepted');
}

/** Rebuilds a tar from files, so a test can change one and keep (or fix up) the rest. */
function tarOf(files: readonly { name: string; data: Buffer }[]): Buffer {
  const parts = files.flatMap(({ name, data }) => [
    tarHeader({ name, size: data.length, mtimeMs: 0 }),
    data,
    tarPadding(data.length),
  ]);
  return Buffer.concat([...parts, tarTrailer()]);
}

/** Edits meta.json and recomputes SHA256SUMS, so only the edit is wrong. */
function withMeta(archive: Buffer, edit: (meta: Record<string, unknown>) => void): Buffer {
  const files = readTar(gunzipSync(archive)).map((f) => ({ name: f.name, data: Buffer.from(f.data) }));
  const metaFile = files.find((f) => f.name === 'meta.json');
  if (metaFile === undefined) throw new Error('no meta.json');
  const meta = JSON.parse(metaFile.data.toString('utf8')) as Record<string, unknown>;
  edit(meta);
  metaFile.data = Buffer.from(JSON.stringify(meta));
  const sums = files
    .filter((f) => f.name !== 'SHA256SUMS')
    .map((f) => `${sha256Hex(f.data)}  ${f.name}\n`)
    .join('');
  const rebuilt = files.map((f) => (f.name === 'SHA256SUMS' ? { name: f.name, data: Buffer.from(sums) } : f));
  return gzipSync(tarOf(rebuilt));
}

describe('snapshot archive', () => {
  it('round-trips every group with its meta, and standard tar sees the layout', async () => {
    const groups = [capture(0, 20), capture(1, 0), capture(2, 7)];
    const archive = await archiveOf(groups);
    const read = readArchive(archive, { archiveBytesMax, groupCount: 3 });
    expect(read.meta.formatVersion).toBe(archiveFormatVersion);
    expect(read.meta.clusterId).toBe('c1');
    expect(read.meta.createdAt).toBe('2026-01-02T00:00:00.000Z');
    expect(read.groups.map((g) => [g.meta.groupId, g.meta.index, g.meta.keys, g.meta.term])).toEqual(
      groups.map((g) => [g.groupId, g.index, g.keys, 3]),
    );
    for (const [i, group] of read.groups.entries()) {
      expect(Buffer.compare(group.data, Buffer.from(groups[i]?.data ?? []))).toBe(0);
      expect(checkGroupState(group).kvs).toHaveLength(group.meta.keys);
      expect(snapshotKeyCount(group.data)).toBe(group.meta.keys);
    }
    expect(readTar(gunzipSync(archive)).map((f) => f.name)).toEqual([
      'group-0.snap',
      'group-1.snap',
      'group-2.snap',
      'meta.json',
      'SHA256SUMS',
    ]);
  });

  it('refuses a flipped byte anywhere in the compressed archive', async () => {
    const archive = await archiveOf([capture(0, 30), capture(1, 30)]);
    for (const at of [10, Math.floor(archive.length / 2), archive.length - 5]) {
      const flipped = Buffer.from(archive);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      expectInvalid(() => readArchive(flipped, { archiveBytesMax }), /./u);
    }
  });

  it("refuses a flipped byte inside a group's file (the sum catches it)", async () => {
    const archive = await archiveOf([capture(0, 30), capture(1, 30)]);
    const tar = gunzipSync(archive);
    tar[512 + 40] = (tar[512 + 40] ?? 0) ^ 0x01; // inside group-0.snap, past its header
    expectInvalid(() => readArchive(gzipSync(tar), { archiveBytesMax }), /group-0.snap does not match/u);
  });

  it('refuses a truncated archive, compressed or not', async () => {
    const archive = await archiveOf([capture(0, 30), capture(1, 30)]);
    expectInvalid(() => readArchive(archive.subarray(0, archive.length - 20), { archiveBytesMax }), /gzip/u);
    const tar = gunzipSync(archive);
    expectInvalid(() => readArchive(gzipSync(tar.subarray(0, 700)), { archiveBytesMax }), /truncated/u);
    expectInvalid(
      () => readArchive(gzipSync(tar.subarray(0, tar.length - 1024)), { archiveBytesMax }),
      /end-of-archive/u,
    );
  });

  it('refuses another format version, another group count, and a state that does not decode', async () => {
    const archive = await archiveOf([capture(0, 5), capture(1, 5)]);
    expectInvalid(
      () =>
        readArchive(
          withMeta(archive, (m) => Object.assign(m, { formatVersion: 2 })),
          { archiveBytesMax },
        ),
      /format version 2/u,
    );
    expectInvalid(() => readArchive(archive, { archiveBytesMax, groupCount: 3 }), /holds 2 groups.*has 3/u);
    const lying = readArchive(
      withMeta(archive, (m) => {
        const groups = m.groups as { keys: number }[];
        if (groups[0] !== undefined) groups[0].keys = 99;
      }),
      { archiveBytesMax },
    );
    const first = lying.groups[0];
    if (first === undefined) throw new Error('no group');
    expectInvalid(() => checkGroupState(first), /holds 5 keys; meta.json says 99/u);
    expectInvalid(
      () => checkGroupState({ meta: first.meta, data: Buffer.from([0x93, 1, 2, 3]) }),
      /does not decode/u,
    );
  });

  it('refuses a file missing from SHA256SUMS and an archive that unpacks past the limit', async () => {
    const archive = await archiveOf([capture(0, 50)]);
    const files = readTar(gunzipSync(archive)).map((f) => ({ name: f.name, data: Buffer.from(f.data) }));
    const extra = gzipSync(tarOf([...files, { name: 'extra.txt', data: Buffer.from('hi') }]));
    expectInvalid(() => readArchive(extra, { archiveBytesMax }), /extra.txt has no sum/u);
    expectInvalid(() => readArchive(archive, { archiveBytesMax: 1024 }), /archiveBytesMax/u);
  });
});
