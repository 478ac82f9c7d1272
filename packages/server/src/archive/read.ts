import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ConclaveError } from '../errors.js';
import { ArchiveContents, type ArchivePart } from './contents.js';
import { type ArchiveMeta, archiveInvalid } from './format.js';
import { readTarStream } from './tar.js';

export interface ReadArchiveOptions {
  /** Decompressed bytes past this are refused: the guard against a gzip bomb. */
  readonly archiveBytesMax: number;
  /**
   * When given, an archive with another number of groups is refused: one with more as soon
   * as the first part of an extra group shows (before onPart sees it), one with fewer at the end.
   */
  readonly groupCount?: number;
  /**
   * Called for each part once it is verified on its own (name, order, size, decoded by the
   * FSM's part reader); the reader reads on only once it settles. PROVISIONAL: a failure
   * found later (a sum, meta.json, a missing part, the gzip trailer) still rejects the
   * read, after onPart has seen earlier parts. A consumer must treat what it was given as
   * unverified until the returned promise resolves (a restore stages, and commits only then).
   * An error it throws rejects the read as is.
   */
  readonly onPart?: (part: ArchivePart) => Promise<void> | void;
}

/**
 * Reads and verifies a gzipped archive as it streams: gunzip, then tar, then each file in
 * order (see ArchiveContents), pulling from `source` only as fast as `onPart` settles.
 * Memory: one part (at most snapshotPartBytesMax) plus meta.json and the per-part sums,
 * never the archive. Anything wrong with the archive rejects with SNAPSHOT_ARCHIVE_INVALID;
 * an error of `source` itself (a file that cannot be read, a dropped connection) rejects
 * with that error. `source` is destroyed when the read fails.
 */
export async function readArchiveStream(source: Readable, options: ReadArchiveOptions): Promise<ArchiveMeta> {
  const contents = new ArchiveContents({ onPart: options.onPart, groupCount: options.groupCount });
  const unpacked = pipeline(source, createGunzip(), () => {
    // Errors reach the loop below through the gunzip stream, which pipeline destroys.
  });
  try {
    const files = readTarStream(bounded(unpacked, options.archiveBytesMax), (header) =>
      contents.admit(header),
    );
    for await (const file of files) await contents.add(file);
    return contents.finish(options.groupCount === undefined ? {} : { groupCount: options.groupCount });
  } catch (error) {
    throw asArchiveError(error);
  } finally {
    // Stops the pipeline (and with it `source`) when the loop ended early.
    unpacked.destroy();
  }
}

/** The decompressed bytes, refused past `archiveBytesMax`. */
async function* bounded(source: AsyncIterable<Buffer>, archiveBytesMax: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > archiveBytesMax) {
      throw archiveInvalid(`the archive unpacks to more than archiveBytesMax (${archiveBytesMax} bytes)`);
    }
    yield chunk;
  }
}

/** zlib's errors mean the gzip stream is broken (a flipped byte fails its CRC, a cut one ends early). */
function asArchiveError(error: unknown): unknown {
  if (error instanceof ConclaveError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === 'string' && code.startsWith('Z_')) {
    return archiveInvalid(`the archive is not a whole gzip stream: ${error.message}`);
  }
  return error;
}
