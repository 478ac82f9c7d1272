import { describe, expect, it } from 'vitest';
import { bytes, FsmDriver, text } from './testing/driver.js';

describe('session-create', () => {
  it('stores the session with CreateIndex = ModifyIndex = the entry index', () => {
    const d = new FsmDriver();
    const session = d.createSession('s1', { name: 'web', node: 'n1', ttlSeconds: 30, lockDelayMs: 500 });
    expect(session).toEqual({
      id: 's1',
      name: 'web',
      node: 'n1',
      ttlSeconds: 30,
      behavior: 'release',
      lockDelayMs: 500,
      createIndex: 1,
      modifyIndex: 1,
    });
    expect(d.fsm.getSession('s1')).toEqual(session);
    expect(d.fsm.sessionIndex()).toBe(1);
  });

  it('keeps the CreateIndex it is given (group 0’s copy) and stamps its own ModifyIndex', () => {
    const d = new FsmDriver();
    d.skip(9);
    expect(d.createSession('s1', {}, 4)).toMatchObject({ createIndex: 4, modifyIndex: 10 });
  });

  it('re-creating an existing id is a no-op returning the stored session', () => {
    const d = new FsmDriver();
    const first = d.createSession('s1', { name: 'first' });
    const again = d.createSession('s1', { name: 'second' });
    expect(again).toEqual(first);
    expect(d.fsm.sessionIndex()).toBe(first.modifyIndex);
  });

  it('lists sessions by id, all or one node’s', () => {
    const d = new FsmDriver();
    d.createSession('s3', { node: 'n1' });
    d.createSession('s1', { node: 'n2' });
    d.createSession('s2', { node: 'n1' });
    expect(d.fsm.listSessions({ node: null }).map((s) => s.id)).toEqual(['s1', 's2', 's3']);
    expect(d.fsm.listSessions({ node: 'n1' }).map((s) => s.id)).toEqual(['s2', 's3']);
    expect(d.fsm.listSessions({ node: 'n9' })).toEqual([]);
  });
});

describe('session-destroy', () => {
  it('with behavior release clears the lock on each held key and returns them with the lock delay', () => {
    const d = new FsmDriver();
    d.createSession('s1', { behavior: 'release', lockDelayMs: 250 });
    d.createSession('s2');
    d.kv({ verb: 'lock', key: 'b', value: bytes('vb'), session: 's1' });
    d.kv({ verb: 'lock', key: 'a', value: bytes('va'), session: 's1' });
    d.kv({ verb: 'lock', key: 'other', session: 's2' });
    d.set('free', 'f');
    const result = d.destroySession('s1');
    const index = d.next - 1;
    expect(result).toEqual({
      type: 'session-destroy',
      existed: true,
      released: [
        { key: 'a', lockDelayMs: 250 },
        { key: 'b', lockDelayMs: 250 },
      ],
    });
    expect(d.fsm.getKey('a')).toMatchObject({ session: null, lockIndex: 1, modifyIndex: index });
    expect(text(d.fsm.getKey('a')?.value)).toBe('va');
    expect(d.fsm.getKey('other')?.session).toBe('s2');
    expect(d.fsm.getKey('free')?.modifyIndex).toBeLessThan(index);
    expect(d.fsm.getSession('s1')).toBeNull();
    expect(d.fsm.kvIndex()).toBe(index);
    expect(d.fsm.sessionIndex()).toBe(index);
    // The released key can be taken by another session, with the next LockIndex.
    expect(d.kv({ verb: 'lock', key: 'a', session: 's2' }).ok).toBe(true);
    expect(d.fsm.getKey('a')?.lockIndex).toBe(2);
  });

  it('with behavior delete deletes each held key', () => {
    const d = new FsmDriver();
    d.createSession('s1', { behavior: 'delete', lockDelayMs: 0 });
    d.kv({ verb: 'lock', key: 'a', session: 's1' });
    d.set('keep', 'k');
    const result = d.destroySession('s1');
    expect(result.released).toEqual([{ key: 'a', lockDelayMs: 0 }]);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['keep']);
  });

  it('of a session holding nothing leaves kvIndex alone; of a missing session changes nothing', () => {
    const d = new FsmDriver();
    const set = d.set('a', '1');
    d.createSession('s1');
    expect(d.destroySession('s1')).toMatchObject({ existed: true, released: [] });
    expect(d.fsm.kvIndex()).toBe(set);
    const sessionIndex = d.fsm.sessionIndex();
    expect(d.destroySession('s1')).toEqual({ type: 'session-destroy', existed: false, released: [] });
    expect(d.fsm.sessionIndex()).toBe(sessionIndex);
  });

  it('a lock with a destroyed session is refused as INVALID_SESSION', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.destroySession('s1');
    expect(d.kv({ verb: 'lock', key: 'a', session: 's1' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_SESSION' },
    });
  });

  it('a plain set keeps a key held, so destroying the session still releases it', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.kv({ verb: 'lock', key: 'a', session: 's1' });
    d.set('a', 'rewritten');
    expect(d.destroySession('s1').released).toEqual([{ key: 'a', lockDelayMs: 15_000 }]);
    expect(d.fsm.getKey('a')?.session).toBeNull();
  });
});
