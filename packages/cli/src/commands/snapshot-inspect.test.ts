import type { KvEntry } from '@conclave/server/archive';
import { describe, expect, it } from 'vitest';
import { otherPrefix, PrefixTally } from './snapshot-inspect.js';

const entry = (key: string, valueBytes: number): KvEntry => ({
  key,
  value: new Uint8Array(valueBytes),
  flags: 0,
  createIndex: 1,
  modifyIndex: 1,
  lockIndex: 0,
  session: null,
});

describe('snapshot inspect --kvdetails tallies', () => {
  it('counts keys and bytes by prefix across parts, sorted by prefix', () => {
    const tally = new PrefixTally(100);
    tally.add({ kvs: [entry('b/1', 10), entry('a/1', 1)], sessions: [] });
    tally.add({ kvs: [entry('b/2', 20), entry('top', 5)], sessions: [] });
    expect(tally.list()).toEqual([
      { prefix: 'a/', count: 1, bytes: 3 + 1 },
      { prefix: 'b/', count: 2, bytes: 3 + 10 + 3 + 20 },
      { prefix: 'top', count: 1, bytes: 3 + 5 },
    ]);
  });

  it('keeps at most prefixesMax prefixes and folds later ones into (other)', () => {
    const tally = new PrefixTally(2);
    const keys = ['a/1', 'b/1', 'c/1', 'a/2', 'd', 'e/1'];
    tally.add({ kvs: keys.map((k) => entry(k, 1)), sessions: [] });
    const list = tally.list();
    expect(list).toEqual([
      { prefix: 'a/', count: 2, bytes: 8 },
      { prefix: 'b/', count: 1, bytes: 4 },
      { prefix: otherPrefix, count: 3, bytes: 4 + 2 + 4 },
    ]);
    // Nothing is lost: every key is counted once.
    expect(list.reduce((n, p) => n + p.count, 0)).toBe(keys.length);
  });
});
