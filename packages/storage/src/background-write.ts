import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { crc32 } from './crc32.js';
import { type Disk, NodeDisk } from './disk.js';
import { DiskError, DiskSyncError } from './errors.js';

/**
 * Writing a large new file without holding the event loop: the checksum is computed one
 * bounded slice per event-loop turn, and on the real disk the bytes go through fs/promises
 * (libuv's thread pool), so timers, sockets and Raft heartbeats go on meanwhile.
 *
 * Only NodeDisk has a background path. Any other Disk (SimDisk, which the simulator drives
 * deterministically) gets the same calls made synchronously, after the same sliced checksum:
 * same results, same crash semantics, no hidden concurrency.
 */

/**
 * Bytes checksummed per event-loop turn. zlib's CRC-32 runs at a few GB/s, so a slice costs
 * well under a millisecond; 100 MiB take about a hundred turns.
 */
export const crcSliceBytesMax = 1024 * 1024;

/**
 * Bytes written between two background fdatasyncs of a large file. The WAL's own fdatasync
 * runs on the event loop, and on ext4 (data=ordered) it can wait for every dirty page the
 * journal commit covers, including a snapshot file's: measured, three 128 MiB snapshot files
 * written at once held WAL syncs for over a second and cost leaders their leadership.
 * Syncing the snapshot file every few MiB off the loop keeps that backlog small.
 */
export const writeSyncSliceBytes = 8 * 1024 * 1024;

/** CRC-32 of `data`, one slice of at most `crcSliceBytesMax` per event-loop turn. */
export async function crc32InSlices(data: Uint8Array): Promise<number> {
  let crc = 0;
  for (let offset = 0; offset < data.length; offset += crcSliceBytesMax) {
    crc = crc32(data.subarray(offset, offset + crcSliceBytesMax), crc);
    if (offset + crcSliceBytesMax < data.length) await nextTurn();
  }
  return crc;
}

/**
 * Create `path` (it must not exist), write `parts` back to back, fsync and close. Durable
 * when the promise resolves; the caller renames it into place. On failure the file may
 * exist, partly written: the caller's temp-file naming makes it a leftover to remove.
 */
export async function writeNewFileDurably(options: {
  disk: Disk;
  path: string;
  parts: readonly Uint8Array[];
}): Promise<void> {
  const { disk, path, parts } = options;
  if (!(disk instanceof NodeDisk)) {
    const file = disk.open(path, { mode: 'createExclusive' });
    try {
      for (const part of parts) file.append(part);
      file.sync();
    } finally {
      file.close();
    }
    return;
  }
  const handle = await wrapAsync({ op: 'open', path }, () => fsp.open(path, 'wx', 0o644));
  try {
    let position = 0;
    let unsynced = 0;
    for (const part of parts) {
      for (let offset = 0; offset < part.length; offset += writeSyncSliceBytes) {
        const slice = part.subarray(offset, offset + writeSyncSliceBytes);
        await writeAll({ handle, path, data: slice, position });
        position += slice.length;
        unsynced += slice.length;
        if (unsynced >= writeSyncSliceBytes) {
          await syncHandle({ handle, path, op: 'fdatasync' });
          unsynced = 0;
        }
      }
    }
    await syncHandle({ handle, path, op: 'fsync' });
  } finally {
    await wrapAsync({ op: 'close', path }, () => handle.close());
  }
}

async function syncHandle(options: {
  handle: FileHandle;
  path: string;
  op: 'fsync' | 'fdatasync';
}): Promise<void> {
  const { handle, path, op } = options;
  try {
    await (op === 'fsync' ? handle.sync() : handle.datasync());
  } catch (error) {
    throw new DiskSyncError({ op, path, code: errnoCode(error), cause: error });
  }
}

/** A FileHandle write may write less than asked (signals, quotas): loop until all is written. */
async function writeAll(options: {
  handle: FileHandle;
  path: string;
  data: Uint8Array;
  position: number;
}): Promise<void> {
  const { handle, path, data, position } = options;
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await wrapAsync({ op: 'write', path }, () =>
      handle.write(data, done, data.length - done, position + done),
    );
    done += bytesWritten;
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function wrapAsync<T>(options: { op: string; path: string }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new DiskError({ ...options, code: errnoCode(error), cause: error });
  }
}

function errnoCode(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return 'EUNKNOWN';
}
