import { describe, expect, it } from 'vitest';
import { majorityActive, majorityValue, majorityVoteResult } from './majority.js';

const values =
  (map: Record<string, number>) =>
  (id: string): number =>
    map[id] ?? 0;

describe('majorityValue (the commit index of match indexes)', () => {
  it('is the largest value a majority has reached, for odd sizes', () => {
    expect(majorityValue(['a'], values({ a: 7 }))).toBe(7);
    expect(majorityValue(['a', 'b', 'c'], values({ a: 5, b: 3, c: 9 }))).toBe(5);
    expect(majorityValue(['a', 'b', 'c', 'd', 'e'], values({ a: 1, b: 2, c: 3, d: 4, e: 5 }))).toBe(3);
  });

  it('needs more than half for even sizes: 2 of 2, 3 of 4', () => {
    expect(majorityValue(['a', 'b'], values({ a: 10, b: 4 }))).toBe(4);
    expect(majorityValue(['a', 'b', 'c', 'd'], values({ a: 10, b: 8, c: 4, d: 2 }))).toBe(4);
  });

  it('does not depend on the order of voters', () => {
    const v = values({ a: 3, b: 1, c: 2 });
    expect(majorityValue(['c', 'a', 'b'], v)).toBe(majorityValue(['a', 'b', 'c'], v));
  });

  it('confirms nothing with no voters', () => {
    expect(majorityValue([], values({}))).toBe(0);
  });

  it('counts a missing member as 0', () => {
    expect(majorityValue(['a', 'b', 'c'], values({ a: 9 }))).toBe(0);
  });
});

describe('majorityVoteResult', () => {
  const votes = (entries: [string, boolean][]) => new Map(entries);

  it('wins with a strict majority of grants', () => {
    expect(majorityVoteResult(['a'], votes([['a', true]]))).toBe('won');
    expect(
      majorityVoteResult(
        ['a', 'b', 'c'],
        votes([
          ['a', true],
          ['b', true],
        ]),
      ),
    ).toBe('won');
  });

  it('is pending until a majority either way is reached', () => {
    expect(majorityVoteResult(['a', 'b', 'c'], votes([['a', true]]))).toBe('pending');
    expect(
      majorityVoteResult(
        ['a', 'b', 'c'],
        votes([
          ['a', true],
          ['b', false],
        ]),
      ),
    ).toBe('pending');
  });

  it('loses once a majority can no longer be reached', () => {
    expect(
      majorityVoteResult(
        ['a', 'b', 'c'],
        votes([
          ['a', true],
          ['b', false],
          ['c', false],
        ]),
      ),
    ).toBe('lost');
  });

  it('needs 2 of 2 and 3 of 4: a tie loses', () => {
    expect(
      majorityVoteResult(
        ['a', 'b'],
        votes([
          ['a', true],
          ['b', false],
        ]),
      ),
    ).toBe('lost');
    const four = ['a', 'b', 'c', 'd'];
    expect(
      majorityVoteResult(
        four,
        votes([
          ['a', true],
          ['b', true],
        ]),
      ),
    ).toBe('pending');
    expect(
      majorityVoteResult(
        four,
        votes([
          ['a', true],
          ['b', true],
          ['c', false],
          ['d', false],
        ]),
      ),
    ).toBe('lost');
    expect(
      majorityVoteResult(
        four,
        votes([
          ['a', true],
          ['b', true],
          ['c', true],
        ]),
      ),
    ).toBe('won');
  });

  it('ignores votes from non-voters', () => {
    expect(
      majorityVoteResult(
        ['a', 'b', 'c'],
        votes([
          ['a', true],
          ['x', true],
          ['y', true],
        ]),
      ),
    ).toBe('pending');
  });

  it('with no voters nobody can win: the election is lost', () => {
    // needed = 1, rejected = 0, 0 - 0 < 1: nothing can ever be won.
    expect(majorityVoteResult([], votes([['a', true]]))).toBe('lost');
  });
});

describe('majorityActive', () => {
  it('needs a strict majority', () => {
    expect(majorityActive(['a', 'b', 'c'], (id) => id === 'a')).toBe(false);
    expect(majorityActive(['a', 'b', 'c'], (id) => id !== 'c')).toBe(true);
    expect(majorityActive(['a', 'b', 'c', 'd'], (id) => id === 'a' || id === 'b')).toBe(false);
    expect(majorityActive(['a', 'b', 'c', 'd'], (id) => id !== 'd')).toBe(true);
  });

  it('is never true with no voters', () => {
    expect(majorityActive([], () => true)).toBe(false);
  });
});
