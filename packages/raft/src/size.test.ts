import { describe, expect, it } from 'vitest';
import { entriesSizeBytes, entryOverheadBytes, entrySizeBytes, limitEntries } from './size.js';
import { entries, indexes } from './testing/entries.js';

describe('entry sizes and limits', () => {
  it('charges data plus a fixed overhead', () => {
    const list = entries(1, [1, 1], 10);
    expect(list.map(entrySizeBytes)).toEqual([10 + entryOverheadBytes, 10 + entryOverheadBytes]);
    expect(entriesSizeBytes(list)).toBe(2 * (10 + entryOverheadBytes));
  });

  it('limitEntries keeps the longest prefix within both limits, and always the first entry', () => {
    const list = entries(1, [1, 1, 1, 1], 10);
    const size = 10 + entryOverheadBytes;
    expect(indexes(limitEntries(list, { bytesMax: 2 * size, countMax: 10 }))).toEqual([1, 2]);
    expect(indexes(limitEntries(list, { bytesMax: 2 * size - 1, countMax: 10 }))).toEqual([1]);
    expect(indexes(limitEntries(list, { bytesMax: 1, countMax: 10 }))).toEqual([1]);
    expect(indexes(limitEntries(list, { bytesMax: 1e9, countMax: 3 }))).toEqual([1, 2, 3]);
    expect(limitEntries([], { bytesMax: 1, countMax: 1 })).toEqual([]);
  });
});
