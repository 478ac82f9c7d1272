import { describe, expect, it } from 'vitest';
import { reservedRows } from '../testing/driver.js';
import { everyKind, nextFence, reservedRowProblems } from '../testing/primitives.js';

const userKeys = ['b', 'user/a', 'user/locked'];

describe('Consul KV over a group holding primitives', () => {
  it('list and keys from the empty prefix show user keys only', () => {
    const d = everyKind();
    expect(reservedRows(d.fsm).length).toBeGreaterThan(20);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(userKeys);
    expect(d.fsm.keys({ prefix: '', separator: null })).toEqual(userKeys);
    expect(d.fsm.keys({ prefix: '', separator: '' })).toEqual(userKeys);
    expect(d.fsm.keys({ prefix: '', separator: '/' })).toEqual(['b', 'user/']);
    const view = d.fsm.view();
    expect(view.list('').map((e) => e.key)).toEqual(userKeys);
    expect(view.keys({ prefix: '', separator: '/' })).toEqual(['b', 'user/']);
    expect(d.fsm.list('user/').map((e) => e.key)).toEqual(['user/a', 'user/locked']);
  });

  it('a txn get-tree of the empty prefix returns user keys only', () => {
    const d = everyKind();
    const outcome = d.txn([{ verb: 'get-tree', key: '' }]);
    expect(outcome.ok).toBe(true);
    expect(outcome.ok && outcome.results.map((e) => e.key)).toEqual(userKeys);
  });

  it('delete-tree of the empty prefix, alone or in a txn, deletes user keys and no primitive row', () => {
    for (const how of ['kv', 'txn'] as const) {
      const d = everyKind();
      const before = reservedRows(d.fsm);
      if (how === 'kv') expect(d.kv({ verb: 'delete-tree', key: '' }).ok).toBe(true);
      else expect(d.txn([{ verb: 'delete-tree', key: '' }]).ok).toBe(true);
      expect(d.fsm.list('')).toEqual([]);
      expect(reservedRows(d.fsm)).toEqual(before);
      expect(reservedRowProblems(d.fsm)).toEqual([]);
      // The primitives go on: the lock passes to its first waiter.
      const { fence } = d.read('lock', 'L', 'holder').value as { fence: number };
      const fresh = nextFence(d);
      expect(fresh).toBeGreaterThan(fence);
      d.prim('lock', 'L', 'release', { fence });
      expect(d.read('lock', 'L', 'holder').value).toEqual({
        session: 's2',
        fence: fresh,
        waiters: ['s3'],
      });
    }
  });

  it('a behavior-delete session’s destroy deletes its user keys, not the primitive rows it held', () => {
    const d = everyKind();
    d.kv({ verb: 'lock', key: 'user/s3', session: 's3' });
    d.destroySession('s3');
    expect(d.fsm.getKey('user/s3')).toBeNull();
    expect(d.read('lock', 'L', 'holder').value).toMatchObject({ session: 's1', waiters: ['s2'] });
    expect(d.read('map', 'M', 'get', { key: 'k1' }).value).not.toBeNull();
    expect(reservedRowProblems(d.fsm)).toEqual([]);
  });
});
