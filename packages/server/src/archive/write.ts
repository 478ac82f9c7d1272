import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { snapshotPartBytesMax } from '../fsm/snapshot-codec.js';
import {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  type GroupSource,
  groupPartsMax,
  metaFileName,
  partFileName,
  sha256Hex,
  sumLine,
  sumsBytesMax,
  sumsFileName,
} from './format.js';
import { tarHeader, tarPadding, tarTrailer } from './tar.js';

/** SHA256SUMS as it grows; refuses to outgrow what a reader accepts. */
class SumsList {
  private readonly lines: string[] = [];
  private bytes = 0;

  add(options: { sha256: string; name: string }): void {
    const line = sumLine(options);
    this.bytes += Buffer.byteLength(line);
    if (this.bytes > sumsBytesMax) {
      throw new Error(
        `archive: ${sumsFileName} would pass sumsBytesMax (${sumsBytesMax} bytes): too many parts`,
      );
    }
    this.lines.push(line);
  }

  toBuffer(): Buffer {
    return Buffer.from(this.lines.join(''), 'utf8');
  }
}

/**
 * The archive's tar bytes: each group's parts as they are pulled, then meta.json and
 * SHA256SUMS, which need every sum. Only one part is held at a time: the tar header needs a
 * file's size first, and a part is the unit whose size is known.
 */
export async function* archiveTarChunks(options: {
  clusterId: string;
  createdAtMs: number;
  groups: AsyncIterable<GroupSource>;
}): AsyncGenerator<Buffer, void, void> {
  const { createdAtMs: mtimeMs } = options;
  const metas: ArchiveGroupMeta[] = [];
  const sums = new SumsList();
  for await (const group of options.groups) {
    if (group.groupId !== metas.length) {
      throw new Error(`archive: group ${group.groupId} captured where group ${metas.length} was due`);
    }
    const whole = createHash('sha256');
    let bytes = 0;
    let seq = 0;
    for await (const part of group.parts) {
      checkPart({ groupId: group.groupId, seq, bytes: part.byteLength });
      const name = partFileName({ groupId: group.groupId, seq });
      const data = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      whole.update(data);
      bytes += data.length;
      sums.add({ sha256: sha256Hex(data), name });
      seq += 1;
      yield* file({ name, data, mtimeMs });
    }
    if (seq === 0) throw new Error(`archive: group ${group.groupId} has no parts (not even a header)`);
    metas.push({
      groupId: group.groupId,
      index: group.index,
      term: group.term,
      voters: [...group.voters],
      learners: [...group.learners],
      keys: group.keys,
      parts: seq,
      bytes,
      sha256: whole.digest('hex'),
    });
  }
  const meta: ArchiveMeta = {
    formatVersion: archiveFormatVersion,
    clusterId: options.clusterId,
    createdAt: new Date(options.createdAtMs).toISOString(),
    groups: metas,
  };
  const metaBytes = Buffer.from(`${JSON.stringify(meta, null, 2)}\n`, 'utf8');
  sums.add({ sha256: sha256Hex(metaBytes), name: metaFileName });
  yield* file({ name: metaFileName, data: metaBytes, mtimeMs });
  yield* file({ name: sumsFileName, data: sums.toBuffer(), mtimeMs });
  yield tarTrailer();
}

/** A part the reader would refuse is a bug upstream: fail the save rather than write it. */
function checkPart(options: { groupId: number; seq: number; bytes: number }): void {
  if (options.bytes > snapshotPartBytesMax) {
    throw new Error(
      `archive: group ${options.groupId} part ${options.seq} is ${options.bytes} bytes, over snapshotPartBytesMax (${snapshotPartBytesMax})`,
    );
  }
  if (options.seq >= groupPartsMax) {
    throw new Error(`archive: group ${options.groupId} has more than groupPartsMax (${groupPartsMax}) parts`);
  }
}

function* file(options: { name: string; data: Buffer; mtimeMs: number }): Generator<Buffer> {
  yield tarHeader({ name: options.name, size: options.data.length, mtimeMs: options.mtimeMs });
  yield options.data;
  yield tarPadding(options.data.length);
}

/**
 * The gzipped archive as a stream. Backpressure reaches the part iterators: the next part
 * is not pulled until the consumer has read what came before (Readable.from pulls only
 * below its 16 KiB high-water mark, and one part is far above it). A failed iterator
 * destroys the stream with its error, so a consumer never mistakes a partial archive for a
 * whole one.
 */
export function archiveStream(options: Parameters<typeof archiveTarChunks>[0]): Readable {
  return pipeline(Readable.from(archiveTarChunks(options), { objectMode: false }), createGzip(), () => {
    // Errors reach the consumer through the returned stream, which pipeline destroys.
  });
}
