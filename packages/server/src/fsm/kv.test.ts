import { describe, expect, it } from 'vitest';
import { bytes, FsmDriver, text } from './testing/driver.js';

describe('set', () => {
  it('creates a key with CreateIndex = ModifyIndex = the entry index, no lock, the given flags', () => {
    const d = new FsmDriver();
    const index = d.set('a', 'one', 42);
    expect(d.fsm.getKey('a')).toEqual({
      key: 'a',
      value: bytes('one'),
      flags: 42,
      createIndex: index,
      modifyIndex: index,
      lockIndex: 0,
      session: null,
    });
    expect(d.fsm.kvIndex()).toBe(index);
  });

  it('updates value and flags, keeps CreateIndex, advances ModifyIndex and kvIndex', () => {
    const d = new FsmDriver();
    const first = d.set('a', 'one', 1);
    const second = d.set('a', 'two');
    const entry = d.fsm.getKey('a');
    expect(text(entry?.value)).toBe('two');
    expect(entry?.flags).toBe(0);
    expect(entry?.createIndex).toBe(first);
    expect(entry?.modifyIndex).toBe(second);
    expect(d.fsm.kvIndex()).toBe(second);
  });

  it('writing what is already stored changes nothing, as in Consul (no index moves)', () => {
    const d = new FsmDriver();
    const first = d.set('a', 'same', 3);
    const result = d.kv({ verb: 'set', key: 'a', value: bytes('same'), flags: 3 });
    expect(result).toEqual({ type: 'kv', ok: true, index: first + 1, error: null });
    expect(d.fsm.getKey('a')?.modifyIndex).toBe(first);
    expect(d.fsm.kvIndex()).toBe(first);
    expect(d.fsm.appliedIndex()).toBe(first + 1);
  });

  it('a plain set on a locked key keeps its Session and LockIndex', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.kv({ verb: 'lock', key: 'a', value: bytes('held'), session: 's1' });
    const index = d.set('a', 'overwritten');
    expect(d.fsm.getKey('a')).toMatchObject({ session: 's1', lockIndex: 1, modifyIndex: index });
    expect(text(d.fsm.getKey('a')?.value)).toBe('overwritten');
  });

  it('treats a missing value as empty', () => {
    const d = new FsmDriver();
    d.kv({ verb: 'set', key: 'a' });
    expect(d.fsm.getKey('a')?.value).toEqual(new Uint8Array(0));
  });
});

describe('cas', () => {
  it('index 0 creates only if the key is absent', () => {
    const d = new FsmDriver();
    expect(d.kv({ verb: 'cas', key: 'a', value: bytes('1'), index: 0 }).ok).toBe(true);
    const kvIndex = d.fsm.kvIndex();
    expect(d.kv({ verb: 'cas', key: 'a', value: bytes('2'), index: 0 })).toMatchObject({
      ok: false,
      error: null,
    });
    expect(text(d.fsm.getKey('a')?.value)).toBe('1');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('index N writes only if ModifyIndex is N, and never creates', () => {
    const d = new FsmDriver();
    const created = d.set('a', '1');
    expect(d.kv({ verb: 'cas', key: 'a', value: bytes('x'), index: created + 7 }).ok).toBe(false);
    expect(d.kv({ verb: 'cas', key: 'missing', value: bytes('x'), index: created }).ok).toBe(false);
    expect(d.fsm.getKey('missing')).toBeNull();
    expect(d.fsm.kvIndex()).toBe(created);
    const ok = d.kv({ verb: 'cas', key: 'a', value: bytes('2'), index: created });
    expect(ok.ok).toBe(true);
    expect(d.fsm.getKey('a')).toMatchObject({ createIndex: created, modifyIndex: ok.index });
  });

  it('keeps the lock of a locked key', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    const locked = d.kv({ verb: 'lock', key: 'a', session: 's1' }).index;
    expect(d.kv({ verb: 'cas', key: 'a', value: bytes('v'), index: locked }).ok).toBe(true);
    expect(d.fsm.getKey('a')).toMatchObject({ session: 's1', lockIndex: 1 });
  });
});

describe('lock (acquire)', () => {
  it('needs an existing session: INVALID_SESSION otherwise, and nothing changes', () => {
    const d = new FsmDriver();
    d.set('a', 'v');
    const kvIndex = d.fsm.kvIndex();
    const unknown = d.kv({ verb: 'lock', key: 'a', value: bytes('x'), session: 'nope' });
    expect(unknown).toMatchObject({
      ok: false,
      error: { code: 'INVALID_SESSION', message: 'invalid session "nope"' },
    });
    const missing = d.kv({ verb: 'lock', key: 'a', value: bytes('x') });
    expect(missing).toMatchObject({
      ok: false,
      error: { code: 'INVALID_SESSION', message: 'missing session' },
    });
    expect(d.fsm.getKey('a')).toMatchObject({ session: null, lockIndex: 0 });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('creates a missing key locked with LockIndex 1', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    const { ok, index } = d.kv({ verb: 'lock', key: 'a', value: bytes('v'), flags: 9, session: 's1' });
    expect(ok).toBe(true);
    expect(d.fsm.getKey('a')).toEqual({
      key: 'a',
      value: bytes('v'),
      flags: 9,
      createIndex: index,
      modifyIndex: index,
      lockIndex: 1,
      session: 's1',
    });
  });

  it('takes a free existing key: LockIndex + 1, CreateIndex kept, value set', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    const created = d.set('a', 'v0');
    d.kv({ verb: 'lock', key: 'a', session: 's1' });
    d.kv({ verb: 'unlock', key: 'a', session: 's1' });
    const taken = d.kv({ verb: 'lock', key: 'a', value: bytes('v2'), session: 's2' });
    expect(taken.ok).toBe(true);
    expect(d.fsm.getKey('a')).toMatchObject({
      session: 's2',
      lockIndex: 2,
      createIndex: created,
      modifyIndex: taken.index,
    });
    expect(text(d.fsm.getKey('a')?.value)).toBe('v2');
  });

  it('by the holder again updates value and flags but not LockIndex', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.kv({ verb: 'lock', key: 'a', value: bytes('1'), session: 's1' });
    const again = d.kv({ verb: 'lock', key: 'a', value: bytes('2'), flags: 5, session: 's1' });
    expect(again.ok).toBe(true);
    expect(d.fsm.getKey('a')).toMatchObject({
      session: 's1',
      lockIndex: 1,
      flags: 5,
      modifyIndex: again.index,
    });
    expect(text(d.fsm.getKey('a')?.value)).toBe('2');
  });

  it('fails without an error while another session holds the key', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.kv({ verb: 'lock', key: 'a', value: bytes('mine'), session: 's1' });
    const kvIndex = d.fsm.kvIndex();
    expect(d.kv({ verb: 'lock', key: 'a', value: bytes('theirs'), session: 's2' })).toMatchObject({
      ok: false,
      error: null,
    });
    expect(d.fsm.getKey('a')).toMatchObject({ session: 's1', lockIndex: 1 });
    expect(text(d.fsm.getKey('a')?.value)).toBe('mine');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });
});

describe('unlock (release)', () => {
  it('by the holder clears the session, sets the value, keeps LockIndex', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.kv({ verb: 'lock', key: 'a', value: bytes('1'), session: 's1' });
    const released = d.kv({ verb: 'unlock', key: 'a', value: bytes('done'), session: 's1' });
    expect(released.ok).toBe(true);
    expect(d.fsm.getKey('a')).toMatchObject({ session: null, lockIndex: 1, modifyIndex: released.index });
    expect(text(d.fsm.getKey('a')?.value)).toBe('done');
  });

  it('fails for another session, an unlocked key and a missing key', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.kv({ verb: 'lock', key: 'a', session: 's1' });
    d.set('free', 'v');
    const kvIndex = d.fsm.kvIndex();
    expect(d.kv({ verb: 'unlock', key: 'a', session: 's2' }).ok).toBe(false);
    expect(d.kv({ verb: 'unlock', key: 'free', session: 's1' }).ok).toBe(false);
    expect(d.kv({ verb: 'unlock', key: 'missing', session: 's1' }).ok).toBe(false);
    expect(d.fsm.getKey('a')?.session).toBe('s1');
    expect(d.fsm.getKey('missing')).toBeNull();
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });
});

describe('delete, delete-tree, delete-cas', () => {
  it('delete removes a key and advances kvIndex; deleting a missing key changes nothing', () => {
    const d = new FsmDriver();
    d.set('a', '1');
    const deleted = d.kv({ verb: 'delete', key: 'a' });
    expect(deleted.ok).toBe(true);
    expect(d.fsm.getKey('a')).toBeNull();
    expect(d.fsm.kvIndex()).toBe(deleted.index);
    expect(d.kv({ verb: 'delete', key: 'a' }).ok).toBe(true);
    expect(d.fsm.kvIndex()).toBe(deleted.index);
  });

  it('delete-tree removes exactly the keys under the prefix', () => {
    const d = new FsmDriver();
    for (const key of ['app/a', 'app/b/c', 'app', 'apple', 'z']) d.set(key, key);
    d.kv({ verb: 'delete-tree', key: 'app/' });
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['app', 'apple', 'z']);
  });

  it('delete-cas deletes only at the matching ModifyIndex, and succeeds for a missing key (Consul)', () => {
    const d = new FsmDriver();
    const index = d.set('a', '1');
    expect(d.kv({ verb: 'delete-cas', key: 'a', index: index + 1 }).ok).toBe(false);
    expect(d.fsm.getKey('a')).not.toBeNull();
    expect(d.fsm.kvIndex()).toBe(index);
    expect(d.kv({ verb: 'delete-cas', key: 'a', index }).ok).toBe(true);
    expect(d.fsm.getKey('a')).toBeNull();
    expect(d.kv({ verb: 'delete-cas', key: 'a', index: 123 }).ok).toBe(true);
  });
});

describe('indexes', () => {
  it('kvIndex moves only when the kvs table changes; appliedIndex on every command', () => {
    const d = new FsmDriver();
    expect(d.fsm.kvIndex()).toBe(0);
    expect(d.fsm.appliedIndex()).toBe(0);
    const set = d.set('a', '1');
    d.skip(3);
    const session = d.createSession('s1');
    expect(d.fsm.kvIndex()).toBe(set);
    expect(d.fsm.sessionIndex()).toBe(session.modifyIndex);
    const failed = d.kv({ verb: 'cas', key: 'a', value: bytes('2'), index: 0 });
    expect(d.fsm.kvIndex()).toBe(set);
    expect(d.fsm.appliedIndex()).toBe(failed.index);
  });
});

describe('reads', () => {
  it('list returns the entries under a prefix, sorted by key', () => {
    const d = new FsmDriver();
    for (const key of ['b', 'a/2', 'a/1', 'a', 'a0']) d.set(key, key);
    expect(d.fsm.list('a/').map((e) => e.key)).toEqual(['a/1', 'a/2']);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['a', 'a/1', 'a/2', 'a0', 'b']);
    expect(d.fsm.list('c')).toEqual([]);
  });

  it('keys with a separator roll deeper keys up to the next segment, once each, like Consul', () => {
    const d = new FsmDriver();
    for (const key of ['web/', 'web/a', 'web/b/c', 'web/b/d', 'web/b', 'web/e/f/g', 'webby', 'x/y'])
      d.set(key, '');
    expect(d.fsm.keys({ prefix: 'web/', separator: '/' })).toEqual([
      'web/',
      'web/a',
      'web/b',
      'web/b/',
      'web/e/',
    ]);
    expect(d.fsm.keys({ prefix: '', separator: '/' })).toEqual(['web/', 'webby', 'x/']);
    expect(d.fsm.keys({ prefix: 'web', separator: '/' })).toEqual(['web/', 'webby']);
    expect(d.fsm.keys({ prefix: 'web/b', separator: null })).toEqual(['web/b', 'web/b/c', 'web/b/d']);
    expect(d.fsm.keys({ prefix: 'web/b', separator: '' })).toEqual(['web/b', 'web/b/c', 'web/b/d']);
    expect(d.fsm.keys({ prefix: '', separator: '/b/' })).toEqual([
      'web/',
      'web/a',
      'web/b',
      'web/b/',
      'web/e/f/g',
      'webby',
      'x/y',
    ]);
  });
});
