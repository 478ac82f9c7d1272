import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { bytes, FsmDriver } from './testing/driver.js';

/** Registers named watches on the driver's FSM and records which fired. */
function recorder(d: FsmDriver) {
  const fired: string[] = [];
  const watch = (name: string, options: Parameters<FsmDriver['fsm']['watch']>[0]) =>
    d.fsm.watch(options, () => fired.push(name));
  return { fired, watch };
}

describe('fsm watches', () => {
  it('fire once for a write to a watched key, and not for other keys', () => {
    const d = new FsmDriver();
    const { fired, watch } = recorder(d);
    watch('a', { keys: ['a'] });
    watch('b', { keys: ['b'] });
    d.set('a', '1');
    d.set('a', '2');
    d.set('c', '1');
    expect(fired).toEqual(['a']);
  });

  it('fire for keys under a watched prefix, including by delete-tree', () => {
    const d = new FsmDriver();
    d.set('app/x', '1');
    const { fired, watch } = recorder(d);
    watch('app/', { prefixes: ['app/'] });
    watch('other/', { prefixes: ['other/'] });
    d.kv({ verb: 'delete-tree', key: 'app' });
    expect(fired).toEqual(['app/']);
  });

  it('see the applied entry when they fire', () => {
    const d = new FsmDriver();
    const seen: number[] = [];
    d.fsm.watch({ keys: ['a'] }, () => seen.push(d.fsm.getKey('a')?.modifyIndex ?? -1, d.fsm.appliedIndex()));
    const index = d.set('a', '1');
    expect(seen).toEqual([index, index]);
  });

  it('do not fire for a failed cas, a refused lock, a rolled-back txn or an unchanged set', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.set('a', '1');
    d.kv({ verb: 'lock', key: 'held', session: 's1' });
    const { fired, watch } = recorder(d);
    watch('all keys', { prefixes: [''] });
    d.kv({ verb: 'cas', key: 'a', value: bytes('2'), index: 0 });
    d.kv({ verb: 'lock', key: 'held', session: 's2' });
    d.txn([
      { verb: 'set', key: 'b', value: bytes('b') },
      { verb: 'get', key: 'missing' },
    ]);
    d.set('a', '1');
    expect(fired).toEqual([]);
  });

  it('with sessions: fire on session create and destroy, not on KV writes', () => {
    const d = new FsmDriver();
    const { fired, watch } = recorder(d);
    watch('sessions 1', { sessions: true });
    d.set('a', '1');
    expect(fired).toEqual([]);
    d.createSession('s1');
    expect(fired).toEqual(['sessions 1']);
    watch('sessions 2', { sessions: true });
    d.createSession('s1');
    expect(fired).toEqual(['sessions 1']);
    d.destroySession('s1');
    expect(fired).toEqual(['sessions 1', 'sessions 2']);
  });

  it('fire for the keys a destroyed session releases or deletes', () => {
    const d = new FsmDriver();
    d.createSession('rel', { behavior: 'release' });
    d.createSession('del', { behavior: 'delete' });
    d.kv({ verb: 'lock', key: 'r', session: 'rel' });
    d.kv({ verb: 'lock', key: 'd', session: 'del' });
    const { fired, watch } = recorder(d);
    watch('r', { keys: ['r'] });
    watch('d', { keys: ['d'] });
    d.destroySession('rel');
    expect(fired).toEqual(['r']);
    d.destroySession('del');
    expect(fired).toEqual(['r', 'd']);
  });

  it('cancel stops a watch; a watch with keys, prefixes and sessions fires once', () => {
    const d = new FsmDriver();
    const { fired, watch } = recorder(d);
    const cancel = watch('cancelled', { keys: ['a'] });
    watch('many', { keys: ['a'], prefixes: ['a', ''], sessions: true });
    cancel();
    d.txn([
      { verb: 'set', key: 'a', value: bytes('1') },
      { verb: 'set', key: 'ab', value: bytes('1') },
    ]);
    d.createSession('s1');
    expect(fired).toEqual(['many']);
  });

  it('refuse a watch beyond watchersMax with OVERLOADED', () => {
    const d = new FsmDriver({ watchersMax: 1 });
    d.fsm.watch({ keys: ['a'] }, () => {});
    expect(() => d.fsm.watch({ keys: ['b'] }, () => {})).toThrow(ConclaveError);
  });
});
