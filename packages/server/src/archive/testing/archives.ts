import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { ConclaveError } from '../../errors.js';
import { FsmDriver } from '../../fsm/testing/driver.js';
import { type GroupSource, sha256Hex } from '../format.js';
import { readTarStream, tarHeader, tarPadding, tarTrailer } from '../tar.js';
import { archiveStream } from '../write.js';

/** A group's identity and its FSM parts, held whole: test states are small. */
export interface TestGroup {
  readonly groupId: number;
  readonly index: number;
  readonly keys: number;
  readonly parts: readonly Uint8Array[];
}

/** Deterministic bytes (xorshift32): the same seed always gives the same archive. */
export function noise(options: { seed: number; bytes: number }): Uint8Array {
  const out = new Uint8Array(options.bytes);
  let x = options.seed | 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * A real FSM state: `keys` keys under three prefixes, values of `valueBytes` incompressible
 * bytes, and one key locked by a session (so the session check has something to check).
 */
export function testGroup(options: { groupId: number; keys: number; valueBytes?: number }): TestGroup {
  const d = new FsmDriver();
  d.createSession(`s${options.groupId}`, { behavior: 'release' });
  for (let i = 0; i < options.keys; i++) {
    const value = noise({ seed: options.groupId * 1_000_003 + i, bytes: options.valueBytes ?? 16 });
    const key = `app${i % 3}/k${String(i).padStart(6, '0')}`;
    const op = i === 0 ? { verb: 'lock' as const, session: `s${options.groupId}` } : { verb: 'set' as const };
    d.kv({ ...op, key, value });
  }
  // The parts a capture sends: the FSM's own, over a view of its state.
  const cursor = d.fsm.openSnapshotParts();
  const parts: Uint8Array[] = [];
  for (let part = cursor.next(); part !== null; part = cursor.next()) parts.push(part);
  return { groupId: options.groupId, index: cursor.appliedIndex, keys: cursor.keys, parts };
}

export function sourceOf(group: TestGroup): GroupSource {
  return {
    groupId: group.groupId,
    index: group.index,
    term: 3,
    voters: ['s1', 's2'],
    learners: ['s3'],
    keys: group.keys,
    parts: (async function* () {
      yield* group.parts;
    })(),
  };
}

export async function* sourcesOf(groups: readonly TestGroup[]): AsyncGenerator<GroupSource> {
  for (const group of groups) yield sourceOf(group);
}

export const createdAtMs = Date.UTC(2026, 0, 2);

export async function archiveOf(groups: readonly TestGroup[]): Promise<Buffer> {
  return buffer(archiveStream({ clusterId: 'c1', createdAtMs, groups: sourcesOf(groups) }));
}

/** Bytes as a stream in `chunkBytes` slices, like a file or a socket would give them. */
export function streamOf(bytes: Uint8Array, chunkBytes = 64 * 1024): Readable {
  async function* slices() {
    for (let at = 0; at < bytes.length; at += chunkBytes)
      yield Buffer.from(bytes.subarray(at, at + chunkBytes));
  }
  return Readable.from(slices(), { objectMode: false });
}

export interface TarFile {
  name: string;
  data: Buffer;
}

/** Every file of a gzipped archive, read with the streaming reader (which tests cover). */
export async function filesOf(archive: Buffer): Promise<TarFile[]> {
  const files: TarFile[] = [];
  for await (const file of readTarStream(Readable.from([gunzipSync(archive)]), () => undefined)) {
    files.push({ name: file.name, data: Buffer.from(file.data) });
  }
  return files;
}

/** A tar of these files, in this order. */
export function tarOf(files: readonly TarFile[]): Buffer {
  const blocks = files.flatMap(({ name, data }) => [
    tarHeader({ name, size: data.length, mtimeMs: 0 }),
    data,
    tarPadding(data.length),
  ]);
  return Buffer.concat([...blocks, tarTrailer()]);
}

/** Gzipped tar of these files with SHA256SUMS recomputed, so only the test's change is wrong. */
export function resummed(files: readonly TarFile[]): Buffer {
  const sums = files
    .filter((f) => f.name !== 'SHA256SUMS')
    .map((f) => `${sha256Hex(f.data)}  ${f.name}\n`)
    .join('');
  const others = files.filter((f) => f.name !== 'SHA256SUMS');
  return gzipSync(tarOf([...others, { name: 'SHA256SUMS', data: Buffer.from(sums) }]));
}

/** The files with meta.json edited (SHA256SUMS still to be recomputed by the caller). */
export function editMeta(
  files: readonly TarFile[],
  edit: (meta: Record<string, unknown>) => void,
): TarFile[] {
  return files.map((f) => {
    if (f.name !== 'meta.json') return f;
    const meta = JSON.parse(f.data.toString('utf8')) as Record<string, unknown>;
    edit(meta);
    return { name: f.name, data: Buffer.from(JSON.stringify(meta)) };
  });
}

/** Awaits a read that must be refused with SNAPSHOT_ARCHIVE_INVALID and this message. */
export async function expectInvalid(read: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await read.then(
    () => new Error('the archive was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConclaveError);
  expect((error as ConclaveError).code).toBe('SNAPSHOT_ARCHIVE_INVALID');
  expect((error as ConclaveError).message).toMatch(message);
}
