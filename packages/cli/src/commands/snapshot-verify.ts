import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type ArchiveMeta, type ArchivePart, readArchiveStream } from '@conclave/server/archive';
import { usageError } from './common.js';
import { snapshotArchiveBytesMax } from './snapshot-limits.js';

/** A file's size, or a usage error naming the file as the user gave it. */
export async function archiveFileBytes(options: { path: string; shown: string }): Promise<number> {
  try {
    return (await stat(options.path)).size;
  } catch (error) {
    throw usageError(
      `cannot read ${options.shown}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * Verifies an archive file by streaming it through the archive reader (sums, meta.json,
 * every part decoded by the FSM's checks): memory stays one part whatever the file's size.
 * `onBytes` sees the file bytes read so far (for a progress bar); `onPart` each part's rows.
 */
export async function verifyArchiveFile(options: {
  path: string;
  shown: string;
  onBytes?: (done: number) => void;
  onPart?: (part: ArchivePart) => void;
}): Promise<ArchiveMeta> {
  await archiveFileBytes(options);
  const source = createReadStream(options.path);
  const { onBytes } = options;
  if (onBytes !== undefined) {
    let done = 0;
    source.on('data', (chunk) => {
      done += chunk.length;
      onBytes(done);
    });
  }
  return readArchiveStream(source, {
    archiveBytesMax: snapshotArchiveBytesMax,
    ...(options.onPart === undefined ? {} : { onPart: options.onPart }),
  });
}
