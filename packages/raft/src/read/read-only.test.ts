import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../errors.js';
import { ReadOnly } from './read-only.js';

const ctx = (n: number) => new Uint8Array([n]);
const contexts = (reads: { context: Uint8Array }[]) => reads.map((r) => r.context[0]);

describe('ReadOnly', () => {
  it('releases reads, in arrival order, once their round is confirmed', () => {
    const ro = new ReadOnly(10);
    ro.add({ context: ctx(1), index: 5, round: 1 });
    ro.add({ context: ctx(2), index: 5, round: 1 });
    ro.add({ context: ctx(3), index: 6, round: 2 });
    expect(ro.release(0)).toEqual([]);
    const first = ro.release(1);
    expect(contexts(first)).toEqual([1, 2]);
    expect(first.map((r) => r.index)).toEqual([5, 5]);
    expect(ro.size).toBe(1);
    expect(contexts(ro.release(5))).toEqual([3]);
    expect(ro.size).toBe(0);
  });

  it('holds reads without an index until the leader commits in its term', () => {
    const ro = new ReadOnly(10);
    ro.add({ context: ctx(1), index: null, round: 1 });
    ro.add({ context: ctx(2), index: null, round: 2 });
    expect(ro.release(2)).toEqual([]);
    ro.assignIndex(7);
    expect(ro.release(2).map((r) => r.index)).toEqual([7, 7]);
  });

  it('does not release a later read ahead of an earlier one', () => {
    const ro = new ReadOnly(10);
    ro.add({ context: ctx(1), index: null, round: 1 });
    ro.add({ context: ctx(2), index: 3, round: 1 });
    expect(ro.release(1)).toEqual([]);
  });

  it('enforces its capacity', () => {
    const ro = new ReadOnly(2);
    ro.add({ context: ctx(1), index: 1, round: 1 });
    expect(ro.isFull()).toBe(false);
    ro.add({ context: ctx(2), index: 1, round: 1 });
    expect(ro.isFull()).toBe(true);
    expect(() => ro.add({ context: ctx(3), index: 1, round: 1 })).toThrow(RaftInvariantError);
  });

  it('asserts rounds never go backwards', () => {
    const ro = new ReadOnly(5);
    ro.add({ context: ctx(1), index: 1, round: 3 });
    expect(() => ro.add({ context: ctx(2), index: 1, round: 2 })).toThrow(RaftInvariantError);
  });

  it('needsRound tells whether any read waits for a round at or after the given one', () => {
    const ro = new ReadOnly(5);
    expect(ro.needsRound(1)).toBe(false);
    ro.add({ context: ctx(1), index: 1, round: 3 });
    expect(ro.needsRound(3)).toBe(true);
    expect(ro.needsRound(4)).toBe(false);
  });

  it('drain hands back every waiting read and empties the queue', () => {
    const ro = new ReadOnly(5);
    ro.add({ context: ctx(1), index: 1, round: 1 });
    ro.add({ context: ctx(2), index: null, round: 2 });
    expect(ro.drain().map((c) => c[0])).toEqual([1, 2]);
    expect(ro.size).toBe(0);
    expect(ro.drain()).toEqual([]);
  });
});
