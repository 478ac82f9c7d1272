import { describe, expect, it } from 'vitest';
import { AppliedBytes } from './applied-bytes.js';

/** Tracks entries after `baseIndex` with the given sizes. */
function tracked(baseIndex: number, sizes: readonly number[]): AppliedBytes {
  const bytes = new AppliedBytes({ baseIndex });
  sizes.forEach((size, i) => {
    bytes.add({ index: baseIndex + 1 + i, bytes: size });
  });
  return bytes;
}

describe('AppliedBytes', () => {
  it('answers the bytes of any range of tracked indexes', () => {
    const bytes = tracked(10, [5, 7, 11, 13]);
    expect(bytes.lastIndex).toBe(14);
    expect(bytes.bytesBetween({ after: 10, through: 14 })).toBe(36);
    expect(bytes.bytesBetween({ after: 11, through: 13 })).toBe(18);
    expect(bytes.bytesBetween({ after: 12, through: 12 })).toBe(0);
  });

  it('finds the lowest compaction point that keeps at most the given bytes, newest first', () => {
    const bytes = tracked(0, [10, 10, 10, 10, 10]);
    // Keeping 25 bytes behind index 5 keeps entries 4 and 5: compact through 3.
    expect(bytes.keepWithin({ through: 5, bytesMax: 25 })).toBe(3);
    expect(bytes.keepWithin({ through: 5, bytesMax: 30 })).toBe(2);
    expect(bytes.keepWithin({ through: 5, bytesMax: 1000 })).toBe(0);
    // Nothing fits: compact through the point itself, never past it.
    expect(bytes.keepWithin({ through: 5, bytesMax: 0 })).toBe(5);
    expect(bytes.keepWithin({ through: 3, bytesMax: 9 })).toBe(3);
  });

  it('keeps answering exactly after dropping indexes, and across many drops', () => {
    const bytes = new AppliedBytes({ baseIndex: 0 });
    for (let index = 1; index <= 1000; index++) {
      bytes.add({ index, bytes: index });
      if (index % 10 === 0) bytes.dropThrough(index - 5);
    }
    expect(bytes.baseIndex).toBe(995);
    expect(bytes.bytesBetween({ after: 995, through: 1000 })).toBe(996 + 997 + 998 + 999 + 1000);
    expect(bytes.keepWithin({ through: 1000, bytesMax: 1998 })).toBe(999);
    expect(bytes.keepWithin({ through: 1000, bytesMax: 1999 })).toBe(998);
    // Dropping below the base, or past the last index, is clamped.
    bytes.dropThrough(3);
    expect(bytes.baseIndex).toBe(995);
    bytes.dropThrough(5000);
    expect(bytes.baseIndex).toBe(1000);
    bytes.add({ index: 1001, bytes: 4 });
    expect(bytes.bytesBetween({ after: 1000, through: 1001 })).toBe(4);
  });

  it('restarts after an installed snapshot', () => {
    const bytes = tracked(0, [1, 2, 3]);
    bytes.reset(50);
    expect(bytes.lastIndex).toBe(50);
    bytes.add({ index: 51, bytes: 9 });
    expect(bytes.bytesBetween({ after: 50, through: 51 })).toBe(9);
  });

  it('crashes on a gap or on a range it does not track (an invariant, not an input error)', () => {
    const bytes = tracked(10, [1, 1]);
    expect(() => bytes.add({ index: 14, bytes: 1 })).toThrow(/expected index 13, got 14/);
    expect(() => bytes.bytesBetween({ after: 9, through: 12 })).toThrow(/outside \[10, 12\]/);
    expect(() => bytes.bytesBetween({ after: 10, through: 13 })).toThrow(/outside \[10, 12\]/);
  });
});
