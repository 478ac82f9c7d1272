import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { newStore, people, person, pets, write } from './testing/people.js';

const ids = (rows: readonly { id: string }[]): string[] => rows.map((row) => row.id);

describe('snapshots', () => {
  it('are not disturbed by later inserts, updates and deletes', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      for (let i = 0; i < 500; i++)
        txn.insert(people, person(`p${String(i).padStart(3, '0')}`, { city: 'oslo' }));
    });
    const before = store.snapshot();
    write(store, 2, (txn) => {
      txn.insert(people, person('p000', { city: 'rome', name: 'changed' }));
      txn.delete(people, 'p001');
      txn.insert(people, person('q', { city: 'oslo' }));
      txn.deletePrefix(people, 'p1');
    });
    expect(before.count(people)).toBe(500);
    expect(before.first(people, 'id', 'p000')?.name).toBe('p000');
    expect(before.first(people, 'id', 'p001')).not.toBeNull();
    expect(before.first(people, 'id', 'q')).toBeNull();
    expect(before.lookup(people, 'city', 'oslo')).toHaveLength(500);
    expect(before.prefix(people, 'id', 'p1')).toHaveLength(100);
    expect(before.tableIndex(people)).toBe(1);
    const after = store.snapshot();
    expect(after.count(people)).toBe(500 - 1 - 100 + 1);
    expect(after.first(people, 'id', 'p000')?.city).toBe('rome');
    expect(after.tableIndex(people)).toBe(2);
  });

  it('do not see an open transaction, which sees its own writes', () => {
    const store = newStore();
    const txn = store.begin(1);
    txn.insert(people, person('p1'));
    expect(txn.first(people, 'id', 'p1')?.id).toBe('p1');
    expect(store.snapshot().first(people, 'id', 'p1')).toBeNull();
    txn.commit();
    expect(store.snapshot().first(people, 'id', 'p1')?.id).toBe('p1');
  });
});

describe('write transactions', () => {
  it('abort leaves nothing behind: rows, indexes, table indexes', () => {
    const store = newStore();
    write(store, 1, (txn) => txn.insert(people, person('keep', { city: 'oslo' })));
    const txn = store.begin(2);
    txn.insert(people, person('p1', { city: 'oslo' }));
    txn.delete(people, 'keep');
    txn.insert(pets, { id: 'rex', owner: 'p1' });
    txn.abort();
    const view = store.snapshot();
    expect(ids(view.all(people))).toEqual(['keep']);
    expect(ids(view.lookup(people, 'city', 'oslo'))).toEqual(['keep']);
    expect(view.count(pets)).toBe(0);
    expect(view.tableIndex(people)).toBe(1);
    expect(view.tableIndex(pets)).toBe(0);
  });

  it('a transaction that throws midway is aborted by the try/finally pattern', () => {
    const store = newStore();
    expect(() =>
      write(store, 1, (txn) => {
        txn.insert(people, person('p1'));
        throw new Error('midway');
      }),
    ).toThrow('midway');
    expect(store.snapshot().count(people)).toBe(0);
    write(store, 2, (txn) => txn.insert(people, person('p2')));
    expect(ids(store.snapshot().all(people))).toEqual(['p2']);
  });

  it('stamps only the tables a commit changed with its index', () => {
    const store = newStore();
    write(store, 3, (txn) => txn.insert(people, person('p1')));
    write(store, 5, (txn) => txn.insert(pets, { id: 'rex', owner: 'p1' }));
    write(store, 7, (txn) => {
      txn.delete(people, 'nobody');
      txn.deletePrefix(pets, 'zzz');
    });
    const view = store.snapshot();
    expect(view.tableIndex(people)).toBe(3);
    expect(view.tableIndex(pets)).toBe(5);
  });

  it('asserts that a table index never goes backwards', () => {
    const store = newStore();
    write(store, 5, (txn) => txn.insert(people, person('p1')));
    expect(() => write(store, 4, (txn) => txn.insert(people, person('p2')))).toThrow(RaftInvariantError);
    expect(store.snapshot().count(people)).toBe(1);
    // The failed commit was aborted, so the store takes the next transaction.
    write(store, 6, (txn) => txn.insert(people, person('p3')));
    expect(store.snapshot().count(people)).toBe(2);
  });

  it('allows one open transaction at a time, and none after commit', () => {
    const store = newStore();
    const txn = store.begin(1);
    expect(() => store.begin(2)).toThrow(RaftInvariantError);
    txn.commit();
    expect(() => txn.insert(people, person('p1'))).toThrow(RaftInvariantError);
    expect(() => txn.commit()).toThrow(RaftInvariantError);
  });

  it('deletePrefix returns the rows it deleted, by key', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      for (const id of ['a/2', 'a/1', 'ab', 'b']) txn.insert(people, person(id));
    });
    const txn = store.begin(2);
    expect(ids(txn.deletePrefix(people, 'a/'))).toEqual(['a/1', 'a/2']);
    txn.commit();
    expect(ids(store.snapshot().all(people))).toEqual(['ab', 'b']);
  });
});

describe('restore', () => {
  it('replaces every table and its index, and wakes every watcher', () => {
    const store = newStore();
    write(store, 9, (txn) => txn.insert(people, person('old')));
    let woken = 0;
    store.watch({ targets: [{ kind: 'key', table: pets, index: 'id', key: 'x' }], onChange: () => woken++ });
    store.watch({ targets: [], onChange: () => woken++ });
    store.restore((writer) => {
      writer.insert(people, person('new', { city: 'oslo' }));
      writer.setTableIndex(people, 4);
      writer.setTableIndex(pets, 2);
    });
    const view = store.snapshot();
    expect(ids(view.all(people))).toEqual(['new']);
    expect(ids(view.lookup(people, 'city', 'oslo'))).toEqual(['new']);
    expect(view.tableIndex(people)).toBe(4);
    expect(view.tableIndex(pets)).toBe(2);
    expect(woken).toBe(2);
    expect(store.watcherCount).toBe(0);
  });

  it('changes nothing when the fill throws', () => {
    const store = newStore();
    write(store, 1, (txn) => txn.insert(people, person('old')));
    expect(() =>
      store.restore((writer) => {
        writer.insert(people, person('new'));
        throw new Error('corrupt');
      }),
    ).toThrow('corrupt');
    expect(ids(store.snapshot().all(people))).toEqual(['old']);
  });
});
