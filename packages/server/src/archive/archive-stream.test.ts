import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { snapshotPartBytesMax } from '../fsm/snapshot-codec.js';
import type { GroupSource } from './format.js';
import { readArchiveStream } from './read.js';
import { archiveOf, noise, sourceOf, type TestGroup, testGroup } from './testing/archives.js';
import { archiveStream } from './write.js';

const archiveBytesMax = 256 * 1024 * 1024;
/** Event-loop turns a test gives a reader or writer to run ahead, were it going to. */
const turnsToRunAhead = 50;

/**
 * What a stream stage may hold beyond the part being handled: the slice the source is
 * reading, gunzip's input and output buffers, one tar block. Generous, and still far below
 * the multi-MiB archives these tests stream.
 */
const readAheadBytesMax = 512 * 1024;

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await nextTurn();
}

/** The archive in 64 KiB slices, counting the bytes the reader has pulled. */
function countedSource(archive: Buffer): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  async function* slices() {
    for (let at = 0; at < archive.length; at += 64 * 1024) {
      const slice = archive.subarray(at, at + 64 * 1024);
      pulled += slice.length;
      yield slice;
    }
  }
  return { stream: Readable.from(slices(), { objectMode: false }), pulled: () => pulled };
}

let group: TestGroup;
let archive: Buffer;

beforeAll(async () => {
  // About 8 MiB of incompressible values in ~256 KiB parts: compressed bytes track raw ones.
  group = testGroup({ groupId: 0, keys: 4000, valueBytes: 2048 });
  archive = await archiveOf([group]);
});

describe('archive streaming', () => {
  it('holds one part at a time while reading: pulled minus delivered stays bounded', async () => {
    expect(archive.length).toBeGreaterThan(7 * 1024 * 1024);
    const source = countedSource(archive);
    let delivered = 0;
    let headroomMax = 0;
    let largest = 0;
    await readArchiveStream(source.stream, {
      archiveBytesMax,
      onPart: async (part) => {
        // Everything pulled but not yet handed out, this part included, is what the reader holds.
        headroomMax = Math.max(headroomMax, source.pulled() - delivered);
        delivered += part.data.length;
        largest = Math.max(largest, part.data.length);
        await turns(2);
      },
    });
    expect(group.parts.length).toBeGreaterThan(20);
    expect(largest).toBeLessThanOrEqual(snapshotPartBytesMax);
    expect(headroomMax).toBeLessThanOrEqual(largest + readAheadBytesMax);
  });

  it('does not read ahead of an onPart that has not settled', async () => {
    const source = countedSource(archive);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    let firstCalled: () => void = () => undefined;
    const first = new Promise<void>((resolve) => {
      firstCalled = resolve;
    });
    const reading = readArchiveStream(source.stream, {
      archiveBytesMax,
      onPart: async () => {
        calls += 1;
        firstCalled();
        await gate;
      },
    });
    await first;
    await turns(turnsToRunAhead);
    expect(calls).toBe(1);
    const firstPart = group.parts[0]?.length ?? 0;
    expect(source.pulled()).toBeLessThanOrEqual(firstPart + readAheadBytesMax);
    release();
    await reading;
    expect(calls).toBe(group.parts.length);
    expect(source.pulled()).toBe(archive.length);
  });

  it('does not pull the next part until the consumer reads what came before', async () => {
    const partCount = 20;
    let pulled = 0;
    async function* parts() {
      for (let seq = 0; seq < partCount; seq++) {
        pulled += 1;
        yield noise({ seed: seq + 1, bytes: 200 * 1024 });
      }
    }
    const source: GroupSource = { ...sourceOf(group), parts: parts() };
    async function* groups() {
      yield source;
    }
    const stream = archiveStream({ clusterId: 'c1', createdAtMs: 0, groups: groups() });
    await turns(turnsToRunAhead);
    expect(pulled).toBeGreaterThan(0);
    expect(pulled).toBeLessThanOrEqual(3);
    // Reading it all pulls every part (the archive is not valid FSM state: only the writer runs).
    const bytes = await buffer(stream);
    expect(pulled).toBe(partCount);
    expect(bytes.length).toBeGreaterThan(partCount * 200 * 1024);
  });

  it("destroys the stream with a failing part iterator's error, or on a part over the max", async () => {
    async function* failing() {
      yield new Uint8Array(10);
      throw new Error('the leader went away');
    }
    async function* oversized() {
      yield new Uint8Array(snapshotPartBytesMax + 1);
    }
    for (const [parts, message] of [
      [failing(), /the leader went away/u],
      [oversized(), /over snapshotPartBytesMax/u],
    ] as const) {
      async function* groups() {
        yield { ...sourceOf(group), parts };
      }
      const stream = archiveStream({ clusterId: 'c1', createdAtMs: 0, groups: groups() });
      await expect(buffer(stream)).rejects.toThrow(message);
    }
  });
});
