import { StorageConfigError } from './errors.js';

const kib = 1024;
const mib = 1024 * kib;
const gib = 1024 * mib;

/** Every limit of the storage layer, each with its unit last. */
export interface StorageLimits {
  /** A segment is sealed once the next frame would take it past this size. */
  readonly segmentBytesMax: number;
  /** The largest encoded record (one group's entries chunk, a hard state, a marker). */
  readonly recordBytesMax: number;
  /**
   * The largest frame payload: one write and one fdatasync. A larger appendBatch is split
   * into several frames, each written and synced in turn.
   */
  readonly batchBytesMax: number;
  /** Snapshots kept per group; older ones are deleted after a new one is saved. */
  readonly snapshotsRetainedMax: number;
  /** The largest snapshot payload the store writes or reads. */
  readonly snapshotBytesMax: number;
}

export const defaultStorageLimits: StorageLimits = {
  segmentBytesMax: 64 * mib,
  recordBytesMax: 8 * mib,
  batchBytesMax: 16 * mib,
  snapshotsRetainedMax: 2,
  snapshotBytesMax: gib,
};

/**
 * Frame lengths are u32 on disk, and one frame is one Buffer in memory; 1 GiB keeps both
 * far from their limits. Recovery rejects longer frames whatever the configured limits.
 */
export const formatFrameBytesMax = gib;

const ranges: { readonly [K in keyof StorageLimits]: { min: number; max: number } } = {
  // Tiny segments are allowed so tests can exercise rotation; production wants MiBs.
  segmentBytesMax: { min: kib, max: 4 * gib },
  recordBytesMax: { min: 64, max: formatFrameBytesMax },
  batchBytesMax: { min: 64, max: formatFrameBytesMax },
  snapshotsRetainedMax: { min: 1, max: 1000 },
  snapshotBytesMax: { min: 1, max: 64 * gib },
};

export function resolveStorageLimits(input: Partial<StorageLimits> = {}): StorageLimits {
  const limits: StorageLimits = { ...defaultStorageLimits, ...input };
  for (const key of Object.keys(ranges) as (keyof StorageLimits)[]) {
    const value = limits[key];
    const { min, max } = ranges[key];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new StorageConfigError(
        `invalid storage limits: ${key} must be an integer in [${min}, ${max}], got ${value}`,
      );
    }
  }
  if (limits.recordBytesMax > limits.batchBytesMax) {
    throw new StorageConfigError('invalid storage limits: recordBytesMax must not exceed batchBytesMax');
  }
  return limits;
}
