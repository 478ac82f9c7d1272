import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { compoundKey } from './schema.js';
import { newStore, people, person, write } from './testing/people.js';

const ids = (rows: readonly { id: string }[]): string[] => rows.map((row) => row.id);

describe('indexes', () => {
  it('finds a row by primary key and by a unique index, and null for a missing key', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      txn.insert(people, person('p1', { email: 'a@x' }));
      txn.insert(people, person('p2'));
    });
    const view = store.snapshot();
    expect(view.first(people, 'id', 'p1')?.email).toBe('a@x');
    expect(view.first(people, 'email', 'a@x')?.id).toBe('p1');
    expect(view.first(people, 'email', 'b@x')).toBeNull();
    expect(view.first(people, 'id', 'p3')).toBeNull();
    // @ts-expect-error: index names are typed per table.
    expect(() => view.first(people, 'nope', 'x')).toThrow(RaftInvariantError);
  });

  it('leaves rows whose indexed field is null out of that index', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      txn.insert(people, person('p1', { email: null }));
      txn.insert(people, person('p2', { email: 'b@x' }));
    });
    expect(ids(store.snapshot().prefix(people, 'email', ''))).toEqual(['p2']);
  });

  it('asserts on a unique violation and, aborted, leaves nothing of the transaction behind', () => {
    const store = newStore();
    write(store, 1, (txn) => txn.insert(people, person('p1', { email: 'a@x' })));
    const txn = store.begin(2);
    txn.insert(people, person('p2', { email: 'b@x' }));
    expect(() => txn.insert(people, person('p3', { email: 'a@x' }))).toThrow(RaftInvariantError);
    txn.abort();
    const view = store.snapshot();
    expect(ids(view.all(people))).toEqual(['p1']);
    expect(view.first(people, 'email', 'b@x')).toBeNull();
    expect(view.tableIndex(people)).toBe(1);
  });

  it('lets a row keep its own unique key when it is replaced', () => {
    const store = newStore();
    write(store, 1, (txn) => txn.insert(people, person('p1', { email: 'a@x', name: 'old' })));
    write(store, 2, (txn) => txn.insert(people, person('p1', { email: 'a@x', name: 'new' })));
    expect(store.snapshot().first(people, 'email', 'a@x')?.name).toBe('new');
  });

  it('looks up every row of a non-unique key, by primary key, and follows a row that moves', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      for (const [id, city] of [
        ['p3', 'oslo'],
        ['p1', 'oslo'],
        ['p2', 'rome'],
        ['p4', 'oslo2'],
      ] as const)
        txn.insert(people, person(id, { city }));
    });
    expect(ids(store.snapshot().lookup(people, 'city', 'oslo'))).toEqual(['p1', 'p3']);
    write(store, 2, (txn) => txn.insert(people, person('p1', { city: 'rome' })));
    const view = store.snapshot();
    expect(ids(view.lookup(people, 'city', 'oslo'))).toEqual(['p3']);
    expect(ids(view.lookup(people, 'city', 'rome'))).toEqual(['p1', 'p2']);
    expect(view.first(people, 'city', 'rome')?.id).toBe('p1');
    expect(view.first(people, 'city', 'nowhere')).toBeNull();
  });

  it('orders a computed multi-field index like the tuple of its fields', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      txn.insert(people, person('p1', { city: 'a', name: 'zed' }));
      txn.insert(people, person('p2', { city: 'ab', name: 'amy' }));
      txn.insert(people, person('p3', { city: 'a', name: 'bob' }));
      txn.insert(people, person('p4', { city: 'a\u0000b', name: 'nul' }));
    });
    const view = store.snapshot();
    // Rows of city 'a' only: not 'ab', and not 'a\0b' although its raw text starts with 'a\0'.
    expect(ids(view.prefix(people, 'cityName', compoundKey(['a'])))).toEqual(['p3', 'p1']);
    expect(ids(view.lookup(people, 'cityName', compoundKey(['a', 'zed'])))).toEqual(['p1']);
    expect(ids(view.prefix(people, 'cityName', compoundKey(['a\u0000b'])))).toEqual(['p4']);
    // Tuple order: ('a', *) < ('a\0b', *) < ('ab', *).
    expect(ids(view.prefix(people, 'cityName', ''))).toEqual(['p3', 'p1', 'p4', 'p2']);
  });

  it('scans a prefix of the primary key and of a non-unique index, in order', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      for (const id of ['a/2', 'a/1', 'a', 'ab', 'b/1', ''])
        txn.insert(people, person(id, { city: `c-${id}` }));
    });
    const view = store.snapshot();
    expect(ids(view.prefix(people, 'id', 'a/'))).toEqual(['a/1', 'a/2']);
    expect(ids(view.prefix(people, 'id', 'a'))).toEqual(['a', 'a/1', 'a/2', 'ab']);
    expect(ids(view.prefix(people, 'id', ''))).toEqual(['', 'a', 'a/1', 'a/2', 'ab', 'b/1']);
    expect(ids(view.prefix(people, 'id', 'c'))).toEqual([]);
    expect(ids(view.prefix(people, 'city', 'c-a/'))).toEqual(['a/1', 'a/2']);
  });

  it('keeps every index consistent through deletes', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      txn.insert(people, person('p1', { email: 'a@x', city: 'oslo' }));
      txn.insert(people, person('p2', { city: 'oslo' }));
    });
    write(store, 2, (txn) => {
      expect(txn.delete(people, 'p1')?.id).toBe('p1');
      expect(txn.delete(people, 'missing')).toBeNull();
    });
    const view = store.snapshot();
    expect(view.first(people, 'email', 'a@x')).toBeNull();
    expect(ids(view.lookup(people, 'city', 'oslo'))).toEqual(['p2']);
    expect(view.count(people)).toBe(1);
  });

  it('freezes stored rows, so a row is a value', () => {
    const store = newStore();
    const row = person('p1');
    write(store, 1, (txn) => txn.insert(people, row));
    expect(Object.isFrozen(store.snapshot().first(people, 'id', 'p1'))).toBe(true);
  });
});
