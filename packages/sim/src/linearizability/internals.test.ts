import { describe, expect, it } from 'vitest';
import { Bitset } from './bitset.js';
import { EntryList, HEAD, NIL } from './entry-list.js';
import { kvModel } from './kv-model.js';
import { done, get, put } from './test-helpers.js';

function walk(list: EntryList): string[] {
  const out: string[] = [];
  for (let node = list.next(HEAD); node !== NIL; node = list.next(node)) {
    out.push(`${list.isCall(node) ? 'call' : 'ret'}${list.opOf(node)}`);
  }
  return out;
}

describe('Bitset', () => {
  it('returns to the same hash and words after set then clear', () => {
    const bits = new Bitset(70);
    const empty = bits.snapshot();
    bits.set(3);
    bits.set(69);
    bits.set(69);
    expect(bits.has(69)).toBe(true);
    expect(bits.hash).not.toBe(0);
    bits.clear(69);
    bits.clear(3);
    expect(bits.hash).toBe(0);
    expect(bits.equalsWords(empty)).toBe(true);
  });
});

describe('EntryList', () => {
  const ops = [done(0, put('x', 'a'), 0, {}, 5), done(1, get('x'), 5, { value: 'a' }, 6)];

  it('puts calls before returns at equal times, so those ops are concurrent', () => {
    expect(walk(new EntryList(ops))).toEqual(['call0', 'call1', 'ret0', 'ret1']);
  });

  it('restores the list exactly when lifts are undone in reverse', () => {
    const list = new EntryList(ops);
    const before = walk(list);
    const firstCall = list.next(HEAD);
    const secondCall = list.next(firstCall);
    list.lift(firstCall);
    expect(walk(list)).toEqual(['call1', 'ret1']);
    // Adjacent call and return: the case where reinsertion order matters.
    list.lift(secondCall);
    expect(list.isEmpty()).toBe(true);
    list.unlift(secondCall);
    list.unlift(firstCall);
    expect(walk(list)).toEqual(before);
  });
});

describe('kvModel', () => {
  it('describes operations for reports', () => {
    expect(kvModel.describe(put('x', 'a'), {})).toBe('put("x", "a") -> ok');
    expect(kvModel.describe(get('x'), undefined)).toBe('get("x") -> ?');
    expect(kvModel.describe({ kind: 'cas', key: 'x', expected: null, value: 'b' }, { ok: false })).toBe(
      'cas("x", null -> "b") -> failed',
    );
  });

  it('hashes and compares states by content', () => {
    const a = kvModel.step(kvModel.init(), put('x', 'a'), {}).state;
    const b = kvModel.step(kvModel.init(), put('x', 'a'), {}).state;
    expect(kvModel.equal(a, b)).toBe(true);
    expect(kvModel.hash(a)).toBe(kvModel.hash(b));
    expect(kvModel.hash(a)).not.toBe(kvModel.hash(kvModel.init()));
  });
});
