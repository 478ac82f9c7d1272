import { describe, expect, it } from 'vitest';
import { FsmDriver } from '../testing/driver.js';
import { primitiveRowKey } from './rows.js';

const max = Number.MAX_SAFE_INTEGER;
const min = Number.MIN_SAFE_INTEGER;

describe('counter', () => {
  it('reads 0 at version 0 before its first write', () => {
    const d = new FsmDriver();
    expect(d.read('counter', 'c', 'get').value).toEqual({ value: 0, version: 0 });
  });

  it('increment and decrement step by 1 or by delta; the version is the Raft index of the write', () => {
    const d = new FsmDriver();
    d.skip(6);
    expect(d.prim('counter', 'c', 'increment')).toEqual({
      type: 'prim',
      index: 7,
      result: { value: 1, version: 7 },
      error: null,
    });
    d.skip(3);
    expect(d.prim('counter', 'c', 'increment', { delta: 41 }).result).toEqual({ value: 42, version: 11 });
    expect(d.prim('counter', 'c', 'decrement').result).toEqual({ value: 41, version: 12 });
    expect(d.prim('counter', 'c', 'decrement', { delta: 50 }).result).toEqual({ value: -9, version: 13 });
    expect(d.prim('counter', 'c', 'increment', { delta: -1 }).result).toEqual({ value: -10, version: 14 });
    expect(d.read('counter', 'c', 'get').value).toEqual({ value: -10, version: 14 });
    expect(d.read('counter', 'other', 'get').value).toEqual({ value: 0, version: 0 });
  });

  it('set replaces the value; with ifVersion only at that version, else VERSION_MISMATCH and nothing changes', () => {
    const d = new FsmDriver();
    const first = d.prim('counter', 'c', 'set', { value: 5 });
    expect(first.result).toEqual({ value: 5, version: first.index });
    const stale = d.prim('counter', 'c', 'set', { value: 6, ifVersion: first.index - 1 });
    expect(stale).toMatchObject({ result: null, error: { code: 'VERSION_MISMATCH' } });
    expect(d.read('counter', 'c', 'get').value).toEqual({ value: 5, version: first.index });
    const current = d.prim('counter', 'c', 'set', { value: 6, ifVersion: first.index });
    expect(current.result).toEqual({ value: 6, version: current.index });
    // ifVersion 0: only while the counter was never written.
    expect(d.prim('counter', 'fresh', 'increment', { ifVersion: 0 }).error).toBeNull();
    expect(d.prim('counter', 'fresh', 'increment', { ifVersion: 0 }).error?.code).toBe('VERSION_MISMATCH');
    expect(d.read('counter', 'fresh', 'get').value).toMatchObject({ value: 1 });
  });

  it('compareAndSet writes only when the value is the expected one; a mismatch reports the value and writes nothing', () => {
    const d = new FsmDriver();
    const set = d.prim('counter', 'c', 'set', { value: 3 });
    const miss = d.prim('counter', 'c', 'compareAndSet', { expect: 4, update: 10 });
    expect(miss).toMatchObject({ result: { ok: false, value: 3 }, error: null });
    expect(d.read('counter', 'c', 'get').value).toEqual({ value: 3, version: set.index });
    expect(d.fsm.getKey(primitiveRowKey({ kind: 'counter', name: 'c' }))?.modifyIndex).toBe(set.index);
    const hit = d.prim('counter', 'c', 'compareAndSet', { expect: 3, update: 10 });
    expect(hit.result).toEqual({ ok: true, value: 10, version: hit.index });
    expect(d.read('counter', 'c', 'get').value).toEqual({ value: 10, version: hit.index });
    // An absent counter is 0.
    expect(d.prim('counter', 'new', 'compareAndSet', { expect: 0, update: -1 }).result).toMatchObject({
      ok: true,
      value: -1,
    });
  });

  it('keeps the extremes ±(2^53 - 1) exactly', () => {
    const d = new FsmDriver();
    d.prim('counter', 'hi', 'set', { value: max });
    d.prim('counter', 'lo', 'set', { value: min });
    expect(d.read('counter', 'hi', 'get').value).toMatchObject({ value: max });
    expect(d.read('counter', 'lo', 'get').value).toMatchObject({ value: min });
    expect(d.prim('counter', 'hi', 'decrement').result).toMatchObject({ value: max - 1 });
    expect(d.prim('counter', 'lo', 'increment').result).toMatchObject({ value: min + 1 });
  });

  it('refuses to step past ±(2^53 - 1) with COUNTER_OVERFLOW, and nothing changes', () => {
    const d = new FsmDriver();
    const hi = d.prim('counter', 'hi', 'set', { value: max });
    const lo = d.prim('counter', 'lo', 'set', { value: min });
    const kvIndex = d.fsm.kvIndex();
    const refusals = [
      d.prim('counter', 'hi', 'increment'),
      d.prim('counter', 'hi', 'decrement', { delta: -1 }),
      d.prim('counter', 'hi', 'increment', { delta: max }),
      d.prim('counter', 'lo', 'decrement'),
      d.prim('counter', 'lo', 'increment', { delta: min }),
      d.prim('counter', 'lo', 'decrement', { delta: max }),
    ];
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ result: null, error: { code: 'COUNTER_OVERFLOW' } });
    }
    expect(d.read('counter', 'hi', 'get').value).toEqual({ value: max, version: hi.index });
    expect(d.read('counter', 'lo', 'get').value).toEqual({ value: min, version: lo.index });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });
});
