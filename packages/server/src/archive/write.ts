import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  type GroupCapture,
  groupFileName,
  metaFileName,
  sha256Hex,
  sumsFileName,
} from './format.js';
import { tarHeader, tarPadding, tarTrailer } from './tar.js';

/**
 * The archive's tar bytes, one group at a time: each group's file as soon as it is captured,
 * then meta.json and SHA256SUMS, which need every group's sum. Putting the group files first
 * lets the writer hold only one group's state at a time, whatever the number of groups.
 */
export async function* archiveTarChunks(options: {
  clusterId: string;
  createdAtMs: number;
  groups: AsyncIterable<GroupCapture>;
}): AsyncGenerator<Buffer, void, void> {
  const { createdAtMs: mtimeMs } = options;
  const metas: ArchiveGroupMeta[] = [];
  const sums: string[] = [];
  for await (const group of options.groups) {
    if (group.groupId !== metas.length) {
      throw new Error(`archive: group ${group.groupId} captured where group ${metas.length} was due`);
    }
    const name = groupFileName(group.groupId);
    const sha256 = sha256Hex(group.data);
    metas.push({
      groupId: group.groupId,
      index: group.index,
      term: group.term,
      voters: [...group.voters],
      learners: [...group.learners],
      bytes: group.data.byteLength,
      sha256,
      keys: group.keys,
    });
    sums.push(`${sha256}  ${name}\n`);
    yield tarHeader({ name, size: group.data.byteLength, mtimeMs });
    yield Buffer.from(group.data.buffer, group.data.byteOffset, group.data.byteLength);
    yield tarPadding(group.data.byteLength);
  }
  const meta: ArchiveMeta = {
    formatVersion: archiveFormatVersion,
    clusterId: options.clusterId,
    createdAt: new Date(options.createdAtMs).toISOString(),
    groups: metas,
  };
  const metaBytes = Buffer.from(`${JSON.stringify(meta, null, 2)}\n`, 'utf8');
  sums.push(`${sha256Hex(metaBytes)}  ${metaFileName}\n`);
  yield* file({ name: metaFileName, data: metaBytes, mtimeMs });
  yield* file({ name: sumsFileName, data: Buffer.from(sums.join(''), 'utf8'), mtimeMs });
  yield tarTrailer();
}

function* file(options: { name: string; data: Buffer; mtimeMs: number }): Generator<Buffer> {
  yield tarHeader({ name: options.name, size: options.data.length, mtimeMs: options.mtimeMs });
  yield options.data;
  yield tarPadding(options.data.length);
}

/**
 * The gzipped archive as a stream. Backpressure reaches the capture: the next group is not
 * taken until the consumer has read what came before. A failed capture destroys the stream
 * with its error, so a consumer never mistakes a partial archive for a whole one.
 */
export function archiveStream(options: Parameters<typeof archiveTarChunks>[0]): Readable {
  return pipeline(Readable.from(archiveTarChunks(options), { objectMode: false }), createGzip(), () => {
    // Errors reach the consumer through the returned stream, which pipeline destroys.
  });
}
