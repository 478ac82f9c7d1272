import { EntryType, RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeCommand } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { decodeSnapshot, encodeSnapshot, snapshotChunkRows, snapshotVersion } from './snapshot-codec.js';
import { bytes, FsmDriver, text } from './testing/driver.js';

/** A group's worth of history: keys, flags, locks, both session behaviors, deletes. */
function populated(): FsmDriver {
  const d = new FsmDriver();
  d.createSession('s1', { node: 'n1', behavior: 'release' });
  d.createSession('s2', { node: 'n2', behavior: 'delete', lockDelayMs: 0 }, 1);
  for (let i = 0; i < 50; i++) d.set(`k/${i}`, `v${i}`, i);
  d.kv({ verb: 'lock', key: 'lock/a', value: bytes('a'), session: 's1' });
  d.kv({ verb: 'lock', key: 'lock/b', session: 's2' });
  d.kv({ verb: 'delete-tree', key: 'k/1' });
  d.skip(2);
  d.txn([
    { verb: 'set', key: 't', value: bytes('t') },
    { verb: 'delete', key: 'k/2' },
  ]);
  return d;
}

function state(fsm: ConclaveFsm | ReturnType<ConclaveFsm['view']>) {
  return {
    kvs: fsm.list(''),
    sessions: fsm.listSessions({ node: null }),
    kvIndex: fsm.kvIndex(),
    sessionIndex: fsm.sessionIndex(),
    appliedIndex: fsm.appliedIndex(),
    locksOfS1: fsm
      .list('lock/')
      .filter((e) => e.session === 's1')
      .map((e) => e.key),
  };
}

describe('snapshot and restore', () => {
  it('round-trip: the restored FSM equals the original, indexes included, and keeps working', () => {
    const d = populated();
    const restored = new ConclaveFsm();
    restored.restore(d.fsm.snapshot());
    expect(state(restored)).toEqual(state(d.fsm));
    expect(restored.listSessions({ node: 'n2' }).map((s) => s.id)).toEqual(['s2']);
    // Both go on identically: destroying s1 releases its key through the restored session index.
    const entry = {
      term: 1,
      index: d.next,
      type: EntryType.Normal,
      data: encodeCommand({ type: 'session-destroy', id: 's1' }),
    };
    const expected = d.fsm.apply(entry);
    expect(restored.apply(entry)).toEqual(expected);
    expect(expected).toMatchObject({ released: [{ key: 'lock/a' }] });
    expect(state(restored)).toEqual(state(d.fsm));
    expect(restored.snapshot()).toEqual(d.fsm.snapshot());
  });

  it('is deterministic: the same entries give the same snapshot bytes', () => {
    const a = populated();
    const b = new FsmDriver();
    for (const entry of a.entries) b.fsm.apply(entry);
    expect(Buffer.from(b.fsm.snapshot()).equals(Buffer.from(a.fsm.snapshot()))).toBe(true);
    const c = new ConclaveFsm();
    c.restore(a.fsm.snapshot());
    expect(Buffer.from(c.snapshot()).equals(Buffer.from(a.fsm.snapshot()))).toBe(true);
  });

  it('a snapshot taken before a write does not see it', () => {
    const d = populated();
    const before = d.fsm.snapshot();
    const expected = state(d.fsm);
    d.set('t', 'changed');
    d.destroySession('s1');
    const restored = new ConclaveFsm();
    restored.restore(before);
    expect(state(restored)).toEqual(expected);
    expect(text(restored.getKey('t')?.value)).toBe('t');
  });

  it('restore replaces everything and wakes every watcher', () => {
    const source = new FsmDriver();
    source.set('only', 'x');
    const d = populated();
    const fired: string[] = [];
    d.fsm.watch({ keys: ['unrelated'] }, () => fired.push('key'));
    d.fsm.watch({ sessions: true }, () => fired.push('sessions'));
    d.fsm.restore(source.fsm.snapshot());
    expect(fired).toEqual(['key', 'sessions']);
    expect(d.fsm.list('').map((e) => e.key)).toEqual(['only']);
    expect(d.fsm.listSessions({ node: null })).toEqual([]);
    expect(d.fsm.appliedIndex()).toBe(1);
    expect(d.fsm.kvIndex()).toBe(1);
  });

  it('encodes in steps of bounded size to the same bytes as at once, from the state when it began', () => {
    const d = populated();
    for (let i = 0; i < snapshotChunkRows * 2 + 5; i++) d.set(`bulk/${i}`, 'v');
    const whole = d.fsm.snapshot();
    const steps = d.fsm.snapshotSteps();
    let count = 0;
    let step = steps.next();
    d.set('k/after', 'written while the snapshot is being encoded');
    while (step.done !== true) {
      count++;
      step = steps.next();
    }
    expect(count).toBeGreaterThanOrEqual(3);
    expect(Buffer.from(step.value).equals(Buffer.from(whole))).toBe(true);
    const restored = new ConclaveFsm();
    restored.restore(step.value);
    expect(restored.getKey('k/after')).toBeNull();
    expect(restored.list('bulk/').length).toBe(snapshotChunkRows * 2 + 5);
  });

  it('asserts on an unknown snapshot version, and on a key held by a session the snapshot lacks', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const fsm = new ConclaveFsm();
    expect(() => fsm.restore(packr.pack([99, 0, 0, 0, 0, 0]))).toThrow(RaftInvariantError);
    const header = packr.pack([snapshotVersion, 5, 5, 0, 1, 0, null, null]);
    const orphan = Buffer.concat([header, packr.pack([['k', new Uint8Array(), 0, 5, 5, 1, 'ghost']])]);
    expect(() => fsm.restore(orphan)).toThrow(RaftInvariantError);
    expect(fsm.list('')).toEqual([]);
  });

  it('loads a version 2 snapshot (no autopilot, no staging), as older data dirs hold', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const v2 = Buffer.concat([
      packr.pack([2, 7, 6, 3, 1, 1]),
      packr.pack([['k', bytes('v'), 0, 6, 6, 1, 's']]),
      packr.pack([['s', '', 'n', 0, 'release', 0, 3, 3]]),
    ]);
    const fsm = new ConclaveFsm();
    fsm.restore(v2);
    expect([fsm.appliedIndex(), fsm.kvIndex(), fsm.sessionIndex()]).toEqual([7, 6, 3]);
    expect(fsm.getKey('k')?.session).toBe('s');
    expect(fsm.autopilot()).toBeNull();
  });
});

describe('decoding a Raft snapshot', () => {
  it('hands out kv values as plain views of the snapshot bytes, not copies', () => {
    const value = new Uint8Array(64 * 1024).fill(5);
    const entry = {
      key: 'big',
      value,
      flags: 0,
      createIndex: 3,
      modifyIndex: 3,
      lockIndex: 0,
      session: null,
    };
    const data = encodeSnapshot({
      appliedIndex: 3,
      kvIndex: 3,
      sessionIndex: 0,
      kvs: [entry],
      sessions: [],
      autopilot: null,
      restoreStaging: null,
    });
    const [decoded] = decodeSnapshot(data).kvs;
    expect(decoded?.value).toEqual(value);
    expect(decoded?.value.constructor).toBe(Uint8Array);
    // No second copy of every value at start-up: the snapshot's memory is the state's.
    expect(decoded?.value.buffer).toBe(data.buffer);
    expect(decoded?.value.byteLength).toBe(value.byteLength);
  });
});

describe('view', () => {
  it('is a read-only copy-on-write view that later applies do not change', () => {
    const d = populated();
    const view = d.fsm.view();
    const expected = state(view);
    d.set('k/3', 'changed');
    d.kv({ verb: 'delete-tree', key: '' });
    d.destroySession('s2');
    expect(state(view)).toEqual(expected);
    expect(text(view.getKey('k/3')?.value)).toBe('v3');
    expect(view.getSession('s2')).not.toBeNull();
    expect(view.keys({ prefix: '', separator: '/' })).toEqual(['k/', 'lock/', 't']);
    expect(d.fsm.list('')).toEqual([]);
    expect(d.fsm.view().appliedIndex()).toBe(d.next - 1);
  });
});
