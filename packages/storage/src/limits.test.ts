import { describe, expect, it } from 'vitest';
import { StorageConfigError } from './errors.js';
import { defaultStorageLimits, resolveStorageLimits } from './limits.js';

describe('storage limits', () => {
  it('defaults to 64 MiB segments and two retained snapshots', () => {
    expect(resolveStorageLimits()).toEqual(defaultStorageLimits);
    expect(defaultStorageLimits.segmentBytesMax).toBe(64 * 1024 * 1024);
    expect(defaultStorageLimits.snapshotsRetainedMax).toBe(2);
  });

  it.each([
    { segmentBytesMax: 0 },
    { segmentBytesMax: 1.5 },
    { recordBytesMax: 10 },
    { snapshotsRetainedMax: 0 },
    { batchBytesMax: 1024, recordBytesMax: 2048 },
  ])('refuses %o', (input) => {
    expect(() => resolveStorageLimits(input)).toThrow(StorageConfigError);
  });
});
