import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../errors.js';
import { entries, indexes } from '../testing/entries.js';
import type { Snapshot } from '../types.js';
import { Unstable } from './unstable.js';

const snapshot = (index: number, term: number): Snapshot => ({
  metadata: { index, term, confState: { voters: ['a'], learners: [] } },
  data: new Uint8Array(0),
});

describe('Unstable', () => {
  it('is empty at first: no last index, no terms', () => {
    const u = new Unstable(5);
    expect(u.lastIndex()).toBeNull();
    expect(u.term(4)).toBeNull();
    expect(u.term(5)).toBeNull();
  });

  it('appends contiguously after its tail', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(entries(5, [1, 1]));
    u.truncateAndAppend(entries(7, [2]));
    expect(u.lastIndex()).toBe(7);
    expect(u.term(7)).toBe(2);
    expect(indexes(u.entries)).toEqual([5, 6, 7]);
  });

  it('replaces a conflicting suffix inside the tail', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(entries(5, [1, 1, 1, 1]));
    u.truncateAndAppend(entries(6, [3]));
    expect(indexes(u.entries)).toEqual([5, 6]);
    expect(u.term(6)).toBe(3);
    expect(u.term(7)).toBeNull();
  });

  it('replaces the whole tail, moving offset back into storage territory', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(entries(5, [1, 1]));
    u.truncateAndAppend(entries(3, [4, 4]));
    expect(u.offset).toBe(3);
    expect(indexes(u.entries)).toEqual([3, 4]);
    expect(u.lastIndex()).toBe(4);
  });

  it('stableTo drops persisted entries, unless they were replaced since', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(entries(1, [1, 1, 1]));
    u.stableTo({ index: 2, term: 1 });
    expect(u.offset).toBe(3);
    expect(indexes(u.entries)).toEqual([3]);
    // a stale notification for a term no longer there is ignored
    u.truncateAndAppend(entries(3, [2]));
    u.stableTo({ index: 3, term: 1 });
    expect(indexes(u.entries)).toEqual([3]);
    // below offset: ignored
    u.stableTo({ index: 1, term: 1 });
    expect(u.offset).toBe(3);
    u.stableTo({ index: 3, term: 2 });
    expect(u.entries).toEqual([]);
    expect(u.offset).toBe(4);
  });

  it('restore holds the snapshot, answers its term and empties the tail', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(entries(1, [1, 1]));
    u.restore(snapshot(10, 3));
    expect(u.offset).toBe(11);
    expect(u.entries).toEqual([]);
    expect(u.lastIndex()).toBe(10);
    expect(u.term(10)).toBe(3);
    expect(u.term(9)).toBeNull();
    u.stableSnapshotTo(9);
    expect(u.snapshot).not.toBeNull();
    u.stableSnapshotTo(10);
    expect(u.snapshot).toBeNull();
  });

  it('slice returns [lo, hi) and asserts it stays inside the tail', () => {
    const u = new Unstable(4);
    u.truncateAndAppend(entries(4, [1, 1, 2, 2]));
    expect(indexes(u.slice(5, 7))).toEqual([5, 6]);
    expect(u.slice(6, 6)).toEqual([]);
    expect(() => u.slice(3, 5)).toThrow(RaftInvariantError);
    expect(() => u.slice(5, 9)).toThrow(RaftInvariantError);
    expect(() => u.slice(6, 5)).toThrow(RaftInvariantError);
  });

  it('refuses to leave a gap', () => {
    const u = new Unstable(4);
    u.truncateAndAppend(entries(4, [1]));
    // an append past the tail's end would be a gap; the assertion catches it
    expect(() => u.truncateAndAppend(entries(7, [1]))).toThrow(RaftInvariantError);
  });
});
