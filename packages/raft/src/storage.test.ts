import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from './errors.js';
import { entrySizeBytes } from './size.js';
import { MemoryStorage } from './storage.js';
import { entries, indexes } from './testing/entries.js';

const conf = { voters: ['a', 'b'], learners: ['c'] };

describe('MemoryStorage', () => {
  it('bootstraps an empty log at index 0 carrying the initial membership', () => {
    const s = MemoryStorage.bootstrap({ voters: ['a', 'b'], learners: ['c'] });
    expect(s.initialState()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, confState: conf });
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.snapshot().metadata).toEqual({ index: 0, term: 0, confState: conf });
  });

  it('stores the hard state', () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 3, vote: 'b', commit: 0 });
    expect(s.initialState().hardState).toEqual({ term: 3, vote: 'b', commit: 0 });
  });

  it('appends, and replaces a conflicting suffix', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 1, 1, 1]));
    s.append(entries(3, [2]));
    expect(s.lastIndex()).toBe(3);
    expect(s.term(3)).toBe(2);
    s.append([]);
    expect(s.lastIndex()).toBe(3);
  });

  it('refuses a gap, and an append into the compacted prefix', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 1]));
    expect(() => s.append(entries(4, [1]))).toThrow(RaftInvariantError);
    s.createSnapshot({ metadata: { index: 2, term: 1, confState: conf }, data: new Uint8Array(0) });
    s.compact(2);
    expect(() => s.append(entries(2, [3]))).toThrow(RaftInvariantError);
  });

  it('reads entries in [lo, hi), within bytesMax but at least one', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 1, 1, 1], 8));
    const size = entrySizeBytes(
      entries(1, [1], 8)[0] ?? { index: 0, term: 0, type: 0, data: new Uint8Array() },
    );
    expect(indexes(s.entries({ lo: 2, hi: 5, bytesMax: 1e9 }))).toEqual([2, 3, 4]);
    expect(indexes(s.entries({ lo: 2, hi: 5, bytesMax: 2 * size }))).toEqual([2, 3]);
    expect(indexes(s.entries({ lo: 2, hi: 5, bytesMax: 1 }))).toEqual([2]);
    expect(s.entries({ lo: 3, hi: 3, bytesMax: 1 })).toEqual([]);
    expect(() => s.entries({ lo: 0, hi: 2, bytesMax: 1e9 })).toThrow(RaftInvariantError);
    expect(() => s.entries({ lo: 2, hi: 6, bytesMax: 1e9 })).toThrow(RaftInvariantError);
    expect(() => s.entries({ lo: 3, hi: 2, bytesMax: 1e9 })).toThrow(RaftInvariantError);
  });

  it('term answers null below the snapshot and asserts past the end', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 2, 3]));
    s.createSnapshot({ metadata: { index: 2, term: 2, confState: conf }, data: new Uint8Array(0) });
    s.compact(2);
    expect(s.term(1)).toBeNull();
    expect(s.term(2)).toBe(2);
    expect(s.term(3)).toBe(3);
    expect(() => s.term(4)).toThrow(RaftInvariantError);
  });

  it('createSnapshot records a snapshot of a held entry; compact drops up to it', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 1, 2, 2]));
    const snap = { metadata: { index: 3, term: 2, confState: conf }, data: new Uint8Array([7]) };
    expect(() =>
      s.createSnapshot({ metadata: { index: 3, term: 1, confState: conf }, data: new Uint8Array(0) }),
    ).toThrow(RaftInvariantError);
    expect(() =>
      s.createSnapshot({ metadata: { index: 9, term: 2, confState: conf }, data: new Uint8Array(0) }),
    ).toThrow(RaftInvariantError);
    s.createSnapshot(snap);
    expect(s.snapshot()).toBe(snap);
    // an older snapshot changes nothing
    s.createSnapshot({ metadata: { index: 1, term: 1, confState: conf }, data: new Uint8Array(0) });
    expect(s.snapshot()).toBe(snap);
    expect(() => s.compact(4)).toThrow(RaftInvariantError);
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    // compacting below what is already compacted changes nothing
    s.compact(1);
    expect(s.firstIndex()).toBe(4);
    expect(s.initialState().confState).toEqual(conf);
  });

  it('applySnapshot replaces the whole log, but never with an older snapshot', () => {
    const s = new MemoryStorage();
    s.append(entries(1, [1, 1, 1]));
    const snap = { metadata: { index: 10, term: 3, confState: conf }, data: new Uint8Array([1]) };
    s.applySnapshot(snap);
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    expect(s.term(10)).toBe(3);
    expect(s.snapshot()).toBe(snap);
    expect(() =>
      s.applySnapshot({ metadata: { index: 9, term: 3, confState: conf }, data: new Uint8Array(0) }),
    ).toThrow(RaftInvariantError);
  });
});
