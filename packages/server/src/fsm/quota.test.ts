import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import type { FsmResult } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { groupSessionsMax, groupStateBytesMaxDefault } from './snapshot-limits.js';
import { kvRowBytes, sessionRowBytes } from './snapshot-rows.js';
import { bytes, FsmDriver } from './testing/driver.js';

/** The state's size counted from scratch: what the FSM's incremental count must always equal. */
function recount(fsm: ConclaveFsm): number {
  const kvs = fsm.list('').reduce((sum, entry) => sum + kvRowBytes(entry), 0);
  const sessions = fsm.listSessions({ node: null }).reduce((sum, s) => sum + sessionRowBytes(s), 0);
  return kvs + sessions;
}

/** A 100-byte value's row under a one-character key: 3 + 100 + 64 bytes. */
const rowOf100 = kvRowBytes({ key: 'k', value: new Uint8Array(100), session: null });
const value = (length: number) => new Uint8Array(length).fill(7);

function refusal(result: FsmResult): { code: string; message: string } | null {
  if (result.type === 'kv' || result.type === 'txn' || result.type === 'session-create') return result.error;
  throw new Error(`no refusal in a ${result.type} result`);
}

describe('stateBytes', () => {
  it('follows every write, delete, lock release and session destroy without drifting from a recount', () => {
    const d = new FsmDriver();
    const check = () => expect(d.fsm.stateBytes).toBe(recount(d.fsm));
    check();
    d.set('a/1', 'one');
    d.set('a/2', 'two'.repeat(100));
    check();
    d.set('a/2', 'short');
    check();
    d.createSession('s1', { behavior: 'release' });
    d.createSession('s2', { behavior: 'delete' });
    d.kv({ verb: 'lock', key: 'held/1', session: 's1', value: bytes('x') });
    d.kv({ verb: 'lock', key: 'held/2', session: 's2', value: bytes('y') });
    check();
    d.destroySession('s1');
    d.destroySession('s2');
    check();
    d.txn([
      { verb: 'set', key: 't/1', value: bytes('t1') },
      { verb: 'delete', key: 'a/1' },
    ]);
    check();
    // A failed txn rolls back, and so does its count.
    d.txn([
      { verb: 'set', key: 't/2', value: bytes('t2') },
      { verb: 'check-not-exists', key: 't/1' },
    ]);
    check();
    d.kv({ verb: 'delete-tree', key: '' });
    check();
    expect(d.fsm.stateBytes).toBe(0);
  });

  it('is counted afresh when a Raft snapshot is installed', () => {
    const d = new FsmDriver();
    d.set('a', 'x'.repeat(1000));
    d.createSession('s1');
    const restored = new ConclaveFsm();
    restored.restore(d.fsm.snapshot());
    expect(restored.stateBytes).toBe(d.fsm.stateBytes);
    expect(restored.stateBytes).toBe(recount(d.fsm));
  });
});

describe('groupStateBytesMax', () => {
  /** A group bounded at 3 rows of 100-byte values. */
  const limits = { groupStateBytesMax: 3 * rowOf100 };

  it('refuses a write past the bound with QUOTA_EXCEEDED, changing nothing, and lets deletes through', () => {
    const d = new FsmDriver(limits);
    for (const key of ['a', 'b', 'c']) expect(d.kv({ verb: 'set', key, value: value(100) }).ok).toBe(true);
    const kvIndex = d.fsm.kvIndex();
    const refused = d.kv({ verb: 'set', key: 'd', value: value(100) });
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe('QUOTA_EXCEEDED');
    expect(refused.error?.message).toMatch(new RegExp(`holds ${3 * rowOf100} of its ${3 * rowOf100} bytes`));
    expect(refused.error?.message).toMatch(/delete keys, or spread keys over more groups/);
    expect(d.fsm.getKey('d')).toBeNull();
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    // Growing a key past the bound is refused too; shrinking one is not.
    expect(d.kv({ verb: 'set', key: 'a', value: value(101) }).error?.code).toBe('QUOTA_EXCEEDED');
    expect(d.kv({ verb: 'set', key: 'a', value: value(10) }).ok).toBe(true);
    expect(d.kv({ verb: 'delete', key: 'b' }).ok).toBe(true);
    expect(d.kv({ verb: 'set', key: 'd', value: value(100) }).ok).toBe(true);
    expect(d.fsm.stateBytes).toBe(recount(d.fsm));
    expect(d.fsm.stateBytes).toBeLessThanOrEqual(limits.groupStateBytesMax);
  });

  it('refuses a txn whose writes add past the bound, whole; one that frees as much as it adds passes', () => {
    const d = new FsmDriver(limits);
    d.kv({ verb: 'set', key: 'a', value: value(100) });
    d.kv({ verb: 'set', key: 'b', value: value(100) });
    const grow = d.apply({
      type: 'txn',
      ops: [
        { verb: 'set', key: 'c', value: value(100) },
        { verb: 'set', key: 'd', value: value(100) },
      ],
    });
    expect(refusal(grow)?.code).toBe('QUOTA_EXCEEDED');
    expect(d.fsm.getKey('c')).toBeNull();
    const swap = d.txn([
      { verb: 'delete', key: 'a' },
      { verb: 'set', key: 'c', value: value(100) },
      { verb: 'set', key: 'd', value: value(100) },
    ]);
    expect(swap.ok).toBe(true);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['b', 'c', 'd']);
  });

  it('refuses a session past the bound; destroying one is always allowed', () => {
    const d = new FsmDriver({ groupStateBytesMax: 2 * rowOf100 });
    d.kv({ verb: 'set', key: 'a', value: value(100) });
    d.kv({ verb: 'set', key: 'b', value: value(80) });
    const session = {
      id: 's1',
      name: '',
      node: 'n',
      ttlSeconds: 0,
      behavior: 'release',
      lockDelayMs: 0,
    } as const;
    const refused = d.apply({ type: 'session-create', session, createIndex: null });
    expect(refusal(refused)?.code).toBe('QUOTA_EXCEEDED');
    expect(d.fsm.getSession('s1')).toBeNull();
  });

  it('decides alike on every replica: replaying the entries gives the same results and state', () => {
    const d = new FsmDriver(limits);
    const results = ['a', 'b', 'c', 'd', 'e'].map((key) => d.kv({ verb: 'set', key, value: value(100) }).ok);
    expect(results).toEqual([true, true, true, false, false]);
    const replica = new ConclaveFsm(limits);
    const replayed = d.entries.map((entry) => replica.apply(entry));
    expect(replayed.map((r) => (r.type === 'kv' ? r.ok : null))).toEqual(results);
    expect(replica.snapshot()).toEqual(d.fsm.snapshot());
  });

  it('defaults to 224 MiB, and refuses at construction a bound whose snapshot could not be stored or sent', () => {
    expect(groupStateBytesMaxDefault).toBe(224 * 1024 * 1024);
    expect(() => new ConclaveFsm({ groupStateBytesMax: 256 * 1024 * 1024 })).toThrow(RaftInvariantError);
    expect(() => new ConclaveFsm({ groupStateBytesMax: 0 })).toThrow(RaftInvariantError);
    expect(() => new ConclaveFsm({ sessionsMax: groupSessionsMax + 1 })).toThrow(RaftInvariantError);
  });
});

describe('sessionsMax', () => {
  it('refuses a session beyond the bound, deterministically; an existing id and a destroy pass', () => {
    const d = new FsmDriver({ sessionsMax: 2 });
    d.createSession('s1');
    d.createSession('s2');
    const spec = { name: '', node: 'n', ttlSeconds: 0, behavior: 'release', lockDelayMs: 0 } as const;
    const refused = d.apply({ type: 'session-create', session: { ...spec, id: 's3' }, createIndex: null });
    expect(refusal(refused)?.code).toBe('QUOTA_EXCEEDED');
    expect(refusal(refused)?.message).toMatch(/holds 2 sessions, its most \(2\)/);
    expect(d.fsm.sessionCount()).toBe(2);
    // Creating an existing id is a no-op, not a new session.
    expect(d.createSession('s1').id).toBe('s1');
    d.destroySession('s1');
    expect(d.createSession('s3').id).toBe('s3');
    const replica = new ConclaveFsm({ sessionsMax: 2 });
    for (const entry of d.entries) replica.apply(entry);
    expect(replica.snapshot()).toEqual(d.fsm.snapshot());
  });

  it('defaults to the bound the archive reader puts on referenced sessions', () => {
    expect(groupSessionsMax).toBe(65_536);
  });
});
