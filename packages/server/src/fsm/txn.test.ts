import { describe, expect, it } from 'vitest';
import { bytes, FsmDriver, text } from './testing/driver.js';
import type { KvEntry } from './types.js';

const empty = new Uint8Array(0);

describe('txn', () => {
  it('applies every op atomically and returns one result per get and write, several per get-tree', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.set('tree/x', 'x');
    const outcome = d.txn([
      { verb: 'set', key: 'a', value: bytes('1'), flags: 2 },
      { verb: 'get', key: 'a' },
      { verb: 'cas', key: 'b', value: bytes('2'), index: 0 },
      { verb: 'lock', key: 'c', value: bytes('3'), session: 's1' },
      { verb: 'unlock', key: 'c', session: 's1' },
      { verb: 'set', key: 'tree/y', value: bytes('y') },
      { verb: 'get-tree', key: 'tree/' },
      { verb: 'check-index', key: 'a', index: d.next },
      { verb: 'check-session', key: 'c' },
      { verb: 'check-not-exists', key: 'nope' },
      { verb: 'delete', key: 'b' },
      { verb: 'delete-tree', key: 'zzz/' },
      { verb: 'delete-cas', key: 'tree/x', index: 2 },
    ]);
    const index = d.next - 1;
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.index).toBe(index);
    const entry = (key: string, value: Uint8Array, more: Partial<KvEntry> = {}): KvEntry => ({
      key,
      value,
      flags: 0,
      createIndex: index,
      modifyIndex: index,
      lockIndex: 0,
      session: null,
      ...more,
    });
    expect(outcome.results).toEqual([
      entry('a', empty, { flags: 2 }),
      entry('a', bytes('1'), { flags: 2 }),
      entry('b', empty),
      entry('c', empty, { lockIndex: 1, session: 's1' }),
      entry('c', empty, { lockIndex: 1 }),
      entry('tree/y', empty),
      entry('tree/x', bytes('x'), { createIndex: 2, modifyIndex: 2 }),
      entry('tree/y', bytes('y')),
    ]);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['a', 'c', 'tree/y']);
    expect(d.fsm.kvIndex()).toBe(index);
  });

  it('reports every failing op with Consul’s message and rolls the whole transaction back', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    const aIndex = d.set('a', 'old');
    d.kv({ verb: 'lock', key: 'held', session: 's2' });
    const kvIndex = d.fsm.kvIndex();
    let fired = 0;
    d.fsm.watch({ keys: ['a', 'new'], prefixes: [''] }, () => fired++);
    const outcome = d.txn([
      { verb: 'set', key: 'new', value: bytes('n') },
      { verb: 'get', key: 'missing' },
      { verb: 'check-index', key: 'a', index: aIndex + 1 },
      { verb: 'check-index', key: 'missing', index: 1 },
      { verb: 'check-session', key: 'held', session: 's1' },
      { verb: 'check-session', key: 'missing', session: 's1' },
      { verb: 'check-not-exists', key: 'a' },
      { verb: 'cas', key: 'a', value: bytes('x'), index: 0 },
      { verb: 'lock', key: 'held', session: 's1' },
      { verb: 'lock', key: 'a', session: 'ghost' },
      { verb: 'lock', key: 'a' },
      { verb: 'unlock', key: 'held', session: 's1' },
      { verb: 'delete-cas', key: 'a', index: aIndex + 1 },
      { verb: 'set', key: 'a', value: bytes('changed') },
    ]);
    expect(outcome).toEqual({
      ok: false,
      index: d.next - 1,
      errors: [
        { opIndex: 1, what: 'key "missing" doesn\'t exist' },
        {
          opIndex: 2,
          what: `failed index check for key "a", current modify index ${aIndex} != ${aIndex + 1}`,
        },
        { opIndex: 3, what: 'failed to check index, key "missing" doesn\'t exist' },
        { opIndex: 4, what: 'failed session check for key "held", current session "s2" != "s1"' },
        { opIndex: 5, what: 'failed to check session, key "missing" doesn\'t exist' },
        { opIndex: 6, what: 'key "a" exists' },
        { opIndex: 7, what: 'failed to set key "a", index is stale' },
        { opIndex: 8, what: 'failed to lock key "held", lock is already held' },
        { opIndex: 9, what: 'invalid session "ghost"' },
        { opIndex: 10, what: 'missing session' },
        { opIndex: 11, what: 'failed to unlock key "held", lock isn\'t held, or is held by another session' },
        { opIndex: 12, what: 'failed to delete key "a", index is stale' },
      ],
    });
    expect(d.fsm.getKey('new')).toBeNull();
    expect(text(d.fsm.getKey('a')?.value)).toBe('old');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(fired).toBe(0);
  });

  it('runs ops in order: later ops see earlier writes of the same transaction', () => {
    const d = new FsmDriver();
    const outcome = d.txn([
      { verb: 'check-not-exists', key: 'k' },
      { verb: 'set', key: 'k', value: bytes('v') },
      { verb: 'check-index', key: 'k', index: d.next },
      { verb: 'delete', key: 'k' },
      { verb: 'check-not-exists', key: 'k' },
      { verb: 'set', key: 'k', value: bytes('w') },
    ]);
    expect(outcome.ok).toBe(true);
    expect(text(d.fsm.getKey('k')?.value)).toBe('w');
  });

  it('a check-session without a session checks that the key is unlocked', () => {
    const d = new FsmDriver();
    d.set('free', 'v');
    expect(d.txn([{ verb: 'check-session', key: 'free' }]).ok).toBe(true);
  });

  it('a read-only transaction succeeds without moving kvIndex', () => {
    const d = new FsmDriver();
    const index = d.set('a', '1');
    const outcome = d.txn([{ verb: 'get', key: 'a' }]);
    expect(outcome.ok && outcome.results.map((e) => text(e.value))).toEqual(['1']);
    expect(d.fsm.kvIndex()).toBe(index);
  });
});
