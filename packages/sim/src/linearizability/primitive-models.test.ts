import { describe, expect, it } from 'vitest';
import { checkLinearizable } from './check.js';
import type { Operation } from './history.js';
import type { Model } from './model.js';
import { counterModel, electionModel, listModel, lockModel, setModel } from './primitive-models.js';

const options = { stepsMax: 100_000 };

/** Operations from [client, call, return, input, output] rows; a null output is unknown. */
function history<I, O>(rows: readonly [number, number, number | null, I, O | null][]): Operation<I, O>[] {
  return rows.map(([clientId, call, ret, input, output]) => ({
    clientId,
    call,
    return: ret ?? Number.POSITIVE_INFINITY,
    input,
    output: output ?? undefined,
  }));
}

function verdict<S, I, O>(
  model: Model<S, I, O>,
  rows: readonly [number, number, number | null, I, O | null][],
) {
  return checkLinearizable(model, history(rows), options).result;
}

describe('the primitives’ models', () => {
  it('counter: concurrent adds may answer in either order; a read must see every add before it', () => {
    const add = (delta: number) => ({ kind: 'add', delta }) as const;
    const get = { kind: 'get' } as const;
    expect(
      verdict(counterModel, [
        [1, 0, 10, add(1), { value: 2 }],
        [2, 1, 9, add(1), { value: 1 }],
        [3, 11, 12, get, { value: 2 }],
      ]),
    ).toBe('ok');
    expect(
      verdict(counterModel, [
        [1, 0, 1, add(1), { value: 1 }],
        [2, 2, 3, get, { value: 0 }],
      ]),
    ).toBe('illegal');
  });

  it('set: an element added once cannot be added anew while present', () => {
    const add = { kind: 'add', element: 'e' } as const;
    expect(
      verdict(setModel, [
        [1, 0, 1, add, { answer: true }],
        [2, 2, 3, add, { answer: true }],
      ]),
    ).toBe('illegal');
    expect(
      verdict(setModel, [
        [1, 0, 1, add, { answer: true }],
        [2, 2, 3, { kind: 'remove', element: 'e' }, { answer: true }],
        [3, 4, 5, add, { answer: true }],
      ]),
    ).toBe('ok');
  });

  it('list: appends take consecutive indexes and a read sees them in that order', () => {
    expect(
      verdict(listModel, [
        [1, 0, 5, { kind: 'append', value: 'a' }, { index: 1 }],
        [2, 1, 4, { kind: 'append', value: 'b' }, { index: 0 }],
        [3, 6, 7, { kind: 'items' }, { items: ['b', 'a'] }],
      ]),
    ).toBe('ok');
    expect(
      verdict(listModel, [
        [1, 0, 1, { kind: 'append', value: 'a' }, { index: 0 }],
        [2, 2, 3, { kind: 'items' }, { items: [] }],
      ]),
    ).toBe('illegal');
  });

  it('lock: never two holders, fences grow, a release needs the holder’s fence', () => {
    const acquire = (client: string) => ({ kind: 'acquire', client }) as const;
    const release = (client: string, fence: number) => ({ kind: 'release', client, fence }) as const;
    expect(
      verdict(lockModel, [
        [1, 0, 1, acquire('a'), { fence: 5 }],
        [1, 2, 3, release('a', 5), { released: true }],
        [2, 1, 4, acquire('b'), { fence: 9 }],
      ]),
    ).toBe('ok');
    // b acquired while a still held the lock (a released only later).
    expect(
      verdict(lockModel, [
        [1, 0, 1, acquire('a'), { fence: 5 }],
        [2, 2, 3, acquire('b'), { fence: 9 }],
        [1, 4, 5, release('a', 5), { released: true }],
      ]),
    ).toBe('illegal');
    // A later grant with a smaller fence.
    expect(
      verdict(lockModel, [
        [1, 0, 1, acquire('a'), { fence: 5 }],
        [1, 2, 3, release('a', 5), { released: true }],
        [2, 4, 5, acquire('b'), { fence: 4 }],
      ]),
    ).toBe('illegal');
  });

  it('election: the first to enter leads; the term moves exactly when the leader changes, upward', () => {
    const enter = (candidate: string) => ({ kind: 'enter', candidate }) as const;
    const withdraw = (candidate: string) => ({ kind: 'withdraw', candidate }) as const;
    expect(
      verdict(electionModel, [
        [1, 0, 1, enter('a'), { term: 3, leader: 'a', candidates: ['a'] }],
        [2, 2, 3, enter('b'), { term: 3, leader: 'a', candidates: ['a', 'b'] }],
        [1, 4, 5, withdraw('a'), { term: 7, leader: 'b', candidates: ['b'] }],
      ]),
    ).toBe('ok');
    expect(
      verdict(electionModel, [
        [1, 0, 1, enter('a'), { term: 3, leader: 'a', candidates: ['a'] }],
        [2, 2, 3, enter('b'), { term: 4, leader: 'a', candidates: ['a', 'b'] }],
      ]),
    ).toBe('illegal');
    expect(
      verdict(electionModel, [
        [1, 0, 1, enter('a'), { term: 3, leader: 'a', candidates: ['a'] }],
        [1, 2, 3, withdraw('a'), { term: 2, leader: null, candidates: [] }],
      ]),
    ).toBe('illegal');
  });
});
