import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { snapshotPartBytesMax } from '../fsm/snapshot-codec.js';
import type { ArchivePart } from './contents.js';
import { archiveFormatVersion, metaBytesMax } from './format.js';
import { type ReadArchiveOptions, readArchiveStream } from './read.js';
import {
  archiveOf,
  editMeta,
  expectInvalid,
  filesOf,
  resummed,
  streamOf,
  type TarFile,
  type TestGroup,
  tarOf,
  testGroup,
} from './testing/archives.js';

const archiveBytesMax = 256 * 1024 * 1024;
const read = (archive: Uint8Array, options: Partial<ReadArchiveOptions> = {}) =>
  readArchiveStream(streamOf(archive), { archiveBytesMax, ...options });

let groups: TestGroup[];
let archive: Buffer;
let files: TarFile[];

beforeAll(async () => {
  // Group 0 spans many parts (2 KiB incompressible values); group 1 is empty; group 2 is small.
  groups = [
    testGroup({ groupId: 0, keys: 600, valueBytes: 2048 }),
    testGroup({ groupId: 1, keys: 0 }),
    testGroup({ groupId: 2, keys: 7 }),
  ];
  archive = await archiveOf(groups);
  files = await filesOf(archive);
});

const part = (name: string): TarFile => {
  const file = files.find((f) => f.name === name);
  if (file === undefined) throw new Error(`no ${name}`);
  return file;
};
const without = (name: string) => files.filter((f) => f.name !== name);

describe('snapshot archive, format 2', () => {
  it('round-trips every group part by part, and meta.json identifies each FSM snapshot', async () => {
    expect(groups[0]?.parts.length).toBeGreaterThan(3);
    const seen: ArchivePart[] = [];
    const meta = await read(archive, { groupCount: 3, onPart: (p) => void seen.push(p) });
    expect(meta.formatVersion).toBe(archiveFormatVersion);
    expect(meta.clusterId).toBe('c1');
    expect(meta.createdAt).toBe('2026-01-02T00:00:00.000Z');
    for (const [i, group] of groups.entries()) {
      const whole = Buffer.concat(group.parts);
      expect(meta.groups[i]).toEqual({
        groupId: i,
        index: group.index,
        term: 3,
        voters: ['s1', 's2'],
        learners: ['s3'],
        keys: group.keys,
        parts: group.parts.length,
        bytes: whole.length,
        sha256: createHash('sha256').update(whole).digest('hex'),
      });
      // onPart saw each part in order, byte for byte, with its decoded rows.
      const mine = seen.filter((p) => p.groupId === i);
      expect(mine.map((p) => p.seq)).toEqual(group.parts.map((_, seq) => seq));
      expect(Buffer.concat(mine.map((p) => p.data)).equals(whole)).toBe(true);
      expect(mine.reduce((n, p) => n + p.rows.kvs.length, 0)).toBe(group.keys);
      expect(mine.reduce((n, p) => n + p.rows.sessions.length, 0)).toBe(1);
    }
    expect(files.map((f) => f.name)).toEqual([
      ...groups.flatMap((g) =>
        g.parts.map((_, seq) => `group-${g.groupId}/${String(seq).padStart(6, '0')}.part`),
      ),
      'meta.json',
      'SHA256SUMS',
    ]);
  });

  it('accepts zero padding after the end-of-archive blocks, as tar pads to a record', async () => {
    const padded = gzipSync(Buffer.concat([gunzipSync(archive), Buffer.alloc(10 * 512)]));
    await expect(read(padded)).resolves.toMatchObject({ clusterId: 'c1' });
  });

  it("refuses a flipped byte in a part's value (its sum) and in meta.json", async () => {
    const victim = part('group-0/000002.part');
    const flippedPart = Buffer.from(victim.data);
    const at = Math.floor(flippedPart.length / 2);
    flippedPart[at] = (flippedPart[at] ?? 0) ^ 0x01;
    const partFlipped = files.map((f) => (f === victim ? { name: f.name, data: flippedPart } : f));
    await expectInvalid(
      read(gzipSync(tarOf(partFlipped))),
      /group-0\/000002\.part does not match its SHA-256/u,
    );

    const meta = part('meta.json');
    const flippedMeta = Buffer.from(meta.data);
    flippedMeta[10] = (flippedMeta[10] ?? 0) ^ 0x01;
    const metaFlipped = files.map((f) => (f === meta ? { name: f.name, data: flippedMeta } : f));
    await expectInvalid(read(gzipSync(tarOf(metaFlipped))), /meta\.json does not match its SHA-256/u);
  });

  it('refuses a flipped byte anywhere in the compressed stream', async () => {
    for (const at of [10, Math.floor(archive.length / 2), archive.length - 5]) {
      const flipped = Buffer.from(archive);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      await expectInvalid(read(flipped), /./u);
    }
  });

  it('refuses a truncated gzip stream, a truncated tar, a missing trailer, and garbage', async () => {
    await expectInvalid(read(archive.subarray(0, archive.length - 20)), /not a whole gzip stream/u);
    const tar = gunzipSync(archive);
    await expectInvalid(read(gzipSync(tar.subarray(0, 700))), /truncated/u);
    await expectInvalid(read(gzipSync(tar.subarray(0, tar.length - 1024))), /end-of-archive/u);
    await expectInvalid(read(gzipSync(tar.subarray(0, tar.length - 512))), /second end-of-archive/u);
    await expectInvalid(read(Buffer.from('this is not an archive at all')), /gzip/u);
    await expectInvalid(read(Buffer.alloc(0)), /gzip/u);
    await expectInvalid(read(gzipSync(Buffer.concat([tar, Buffer.from('tail')]))), /data after/u);
  });

  it('refuses a missing part, a reordered part, a group out of order, and extra files', async () => {
    await expectInvalid(
      read(resummed(without('group-0/000001.part'))),
      /group-0\/000002\.part where group 0 part 1 was due/u,
    );
    const swapped = [...files];
    [swapped[1], swapped[2]] = [swapped[2] as TarFile, swapped[1] as TarFile];
    await expectInvalid(read(resummed(swapped)), /group-0\/000002\.part where group 0 part 1 was due/u);
    const g1 = part('group-1/000000.part');
    await expectInvalid(
      read(resummed([g1, ...without(g1.name)])),
      /group-1\/000000\.part where group 0 part 0 was due/u,
    );

    const extra = { name: 'extra.txt', data: Buffer.from('hi') };
    const metaAt = files.findIndex((f) => f.name === 'meta.json');
    const beforeMeta = [...files.slice(0, metaAt), extra, ...files.slice(metaAt)];
    await expectInvalid(read(resummed(beforeMeta)), /unexpected file extra\.txt/u);
    await expectInvalid(read(gzipSync(tarOf([...files, extra]))), /extra\.txt after SHA256SUMS/u);
    // A part named in SHA256SUMS but absent at the end of its group.
    const lastOfGroup2 = `group-2/${String((groups[2]?.parts.length ?? 1) - 1).padStart(6, '0')}.part`;
    await expectInvalid(
      read(gzipSync(tarOf(without(lastOfGroup2)))),
      /state is invalid|lists files the archive lacks/u,
    );
  });

  it('refuses format versions 1 and 3, with advice to save again', async () => {
    await expectInvalid(
      read(resummed(editMeta(files, (m) => Object.assign(m, { formatVersion: 1 })))),
      /format version 1 is not 2.*save the snapshot again/u,
    );
    await expectInvalid(
      read(resummed(editMeta(files, (m) => Object.assign(m, { formatVersion: 3 })))),
      /format version 3 is not 2/u,
    );
    // A real format 1 archive: one file per group; refused at its first file.
    const formatOne = [
      { name: 'group-0.snap', data: Buffer.concat(groups[0]?.parts ?? []) },
      part('meta.json'),
    ];
    await expectInvalid(read(resummed(formatOne)), /format version 1 is not 2.*save the snapshot again/u);
  });

  it('refuses a part over snapshotPartBytesMax and a meta.json over metaBytesMax, before reading them', async () => {
    const big = { name: 'group-0/000000.part', data: Buffer.alloc(snapshotPartBytesMax + 1) };
    await expectInvalid(read(resummed([big, ...without(big.name)])), /over the 983040/u);
    const metaAt = files.findIndex((f) => f.name === 'meta.json');
    const bigMeta = [
      ...files.slice(0, metaAt),
      { name: 'meta.json', data: Buffer.alloc(metaBytesMax + 1, 0x20) },
    ];
    await expectInvalid(read(gzipSync(tarOf(bigMeta))), /meta\.json is \d+ bytes, over/u);
  });

  it('refuses a state the FSM would refuse, and meta.json that does not match the parts', async () => {
    const garbage = { name: 'group-2/000000.part', data: Buffer.from([0x93, 1, 2, 3, 4]) };
    const replaced = files.map((f) => (f.name === garbage.name ? garbage : f));
    await expectInvalid(read(resummed(replaced)), /group 2's state is invalid at part 0/u);
    const lying = editMeta(files, (m) => {
      const list = m.groups as { keys: number }[];
      if (list[2] !== undefined) list[2].keys = 99;
    });
    await expectInvalid(read(resummed(lying)), /group 2's parts do not match meta\.json/u);
    const fewer = editMeta(files, (m) => (m.groups as unknown[]).pop());
    await expectInvalid(read(resummed(fewer)), /lists 2 groups; the archive holds parts of 3/u);
  });

  it('refuses another group count and an archive that unpacks past archiveBytesMax', async () => {
    await expectInvalid(read(archive, { groupCount: 8 }), /holds 3 groups; this cluster has 8/u);
    await expectInvalid(read(archive, { archiveBytesMax: 64 * 1024 }), /more than archiveBytesMax/u);
    // A gzip bomb: 64 MiB of zeros in a few KiB, refused once past the limit.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    await expectInvalid(read(bomb, { archiveBytesMax: 1024 * 1024 }), /more than archiveBytesMax/u);
  });

  it("refuses a part of a group past the cluster's count at its header, before onPart sees it", async () => {
    const seen: number[] = [];
    const onPart = (p: ArchivePart) => void seen.push(p.groupId);
    await expectInvalid(
      read(archive, { groupCount: 2, onPart }),
      /group-2\/000000\.part.*this cluster has 2 groups/u,
    );
    // Groups 0 and 1 fit and were handed on; group 2's first part never was.
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([0, 1]));
  });

  it("passes on the source's own error as it is, and the consumer's", async () => {
    const failing = new Readable({
      read() {
        this.destroy(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
      },
    });
    await expect(readArchiveStream(failing, { archiveBytesMax })).rejects.toThrow('disk on fire');
    const refusing = read(archive, { onPart: () => Promise.reject(new Error('consumer says no')) });
    await expect(refusing).rejects.toThrow('consumer says no');
  });
});
