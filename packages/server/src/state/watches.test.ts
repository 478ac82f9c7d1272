import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { compoundKey } from './schema.js';
import type { StateStore, WatchTarget } from './store.js';
import { newStore, people, person, pets, write } from './testing/people.js';

const key = (id: string): WatchTarget => ({ kind: 'key', table: people, index: 'id', key: id });
const prefix = (p: string): WatchTarget => ({ kind: 'prefix', table: people, index: 'id', prefix: p });

/** Registers named watchers and records which fired, in order. */
function recorder(store: StateStore) {
  const fired: string[] = [];
  const add = (name: string, targets: readonly WatchTarget[]) =>
    store.watch({ targets, onChange: () => fired.push(name) });
  return { fired, add };
}

describe('watches', () => {
  it('wake exactly the watchers of the keys a write changed, once', () => {
    const store = newStore();
    const { fired, add } = recorder(store);
    add('a', [key('a')]);
    add('b', [key('b')]);
    add('a-or-c', [key('c'), key('a')]);
    write(store, 1, (txn) => txn.insert(people, person('a')));
    expect(fired).toEqual(['a', 'a-or-c']);
    write(store, 2, (txn) => txn.insert(people, person('a')));
    expect(fired).toEqual(['a', 'a-or-c']);
    expect(store.watcherCount).toBe(1);
  });

  it('among 10,000 idle watchers, a write to one key wakes exactly one', () => {
    const store = newStore();
    const fired: number[] = [];
    for (let i = 0; i < 10_000; i++) store.watch({ targets: [key(`k${i}`)], onChange: () => fired.push(i) });
    write(store, 1, (txn) => txn.insert(people, person('k4242')));
    expect(fired).toEqual([4242]);
    expect(store.watcherCount).toBe(9_999);
  });

  it('wake a prefix watcher when a key under it is written, not when one outside is', () => {
    const store = newStore();
    const { fired, add } = recorder(store);
    add('app/', [prefix('app/')]);
    add('app/db/', [prefix('app/db/')]);
    add('all', [prefix('')]);
    add('other/', [prefix('other/')]);
    write(store, 1, (txn) => txn.insert(people, person('app/web')));
    expect(fired).toEqual(['app/', 'all']);
    write(store, 2, (txn) => txn.insert(people, person('apple')));
    expect(fired).toEqual(['app/', 'all']);
  });

  it('wake, on a prefix delete, exact watchers inside it and prefix watchers overlapping it', () => {
    const store = newStore();
    write(store, 1, (txn) => {
      for (const id of ['app/a', 'app/db/x', 'apple', 'other']) txn.insert(people, person(id));
    });
    const { fired, add } = recorder(store);
    add('key app/a', [key('app/a')]);
    add('key apple', [key('apple')]);
    add('prefix app/db/', [prefix('app/db/')]);
    add('prefix a', [prefix('a')]);
    add('prefix app/none/', [prefix('app/none/')]);
    add('prefix other', [prefix('other')]);
    write(store, 2, (txn) => txn.deletePrefix(people, 'app/'));
    expect(fired.sort()).toEqual(['key app/a', 'prefix a', 'prefix app/db/']);
  });

  it('do not fire for a prefix delete that deleted nothing', () => {
    const store = newStore();
    const { fired, add } = recorder(store);
    add('all', [prefix('')]);
    write(store, 1, (txn) => txn.deletePrefix(people, 'nothing/'));
    expect(fired).toEqual([]);
  });

  it('fire after commit, never for an aborted transaction', () => {
    const store = newStore();
    const seen: (string | null)[] = [];
    store.watch({
      targets: [key('a')],
      onChange: () => seen.push(store.snapshot().first(people, 'id', 'a')?.name ?? null),
    });
    const txn = store.begin(1);
    txn.insert(people, person('a', { name: 'first' }));
    txn.abort();
    expect(seen).toEqual([]);
    write(store, 2, (t) => {
      t.insert(people, person('a', { name: 'second' }));
      expect(seen).toEqual([]);
    });
    expect(seen).toEqual(['second']);
  });

  it('cancel removes a watcher, and cancelling twice or after firing is harmless', () => {
    const store = newStore();
    const { fired, add } = recorder(store);
    const cancelA = add('a', [key('a'), prefix('a')]);
    const cancelB = add('b', [key('b')]);
    cancelA();
    cancelA();
    write(store, 1, (txn) => {
      txn.insert(people, person('a'));
      txn.insert(people, person('b'));
    });
    expect(fired).toEqual(['b']);
    cancelB();
    expect(store.watcherCount).toBe(0);
  });

  it('a cancelled prefix does not stop another watcher of the same prefix', () => {
    const store = newStore();
    const { fired, add } = recorder(store);
    const cancel = add('one', [prefix('x/')]);
    add('two', [prefix('x/')]);
    cancel();
    write(store, 1, (txn) => txn.insert(people, person('x/1')));
    expect(fired).toEqual(['two']);
  });

  it('watch a whole table, or one key of a secondary index (old and new value)', () => {
    const store = newStore();
    write(store, 1, (txn) => txn.insert(people, person('p1', { city: 'oslo' })));
    const { fired, add } = recorder(store);
    add('pets', [{ kind: 'table', table: pets }]);
    add('oslo', [{ kind: 'key', table: people, index: 'city', key: 'oslo' }]);
    add('rome', [{ kind: 'key', table: people, index: 'city', key: 'rome' }]);
    add('madrid', [{ kind: 'key', table: people, index: 'city', key: 'madrid' }]);
    add('rome via compound', [
      { kind: 'prefix', table: people, index: 'cityName', prefix: compoundKey(['rome']) },
    ]);
    write(store, 2, (txn) => txn.insert(people, person('p1', { city: 'rome' })));
    expect(fired).toEqual(['oslo', 'rome', 'rome via compound']);
    write(store, 3, (txn) => txn.insert(pets, { id: 'rex', owner: 'p1' }));
    expect(fired).toEqual(['oslo', 'rome', 'rome via compound', 'pets']);
  });

  it('refuse a watcher beyond watchersMax with OVERLOADED, and accept one again after a fire', () => {
    const store = newStore({ watchersMax: 2 });
    store.watch({ targets: [key('a')], onChange: () => {} });
    store.watch({ targets: [key('b')], onChange: () => {} });
    let error: unknown = null;
    try {
      store.watch({ targets: [key('c')], onChange: () => {} });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConclaveError);
    expect((error as ConclaveError).code).toBe('OVERLOADED');
    write(store, 1, (txn) => txn.insert(people, person('a')));
    expect(() => store.watch({ targets: [key('c')], onChange: () => {} })).not.toThrow();
  });

  it('refuse more targets than watchTargetsMax and an index the table lacks', () => {
    const store = newStore({ watchTargetsMax: 2 });
    expect(() => store.watch({ targets: [key('a'), key('b'), key('c')], onChange: () => {} })).toThrow(
      ConclaveError,
    );
    expect(() =>
      store.watch({ targets: [{ kind: 'key', table: people, index: 'nope', key: 'a' }], onChange: () => {} }),
    ).toThrow(RaftInvariantError);
    expect(store.watcherCount).toBe(0);
  });

  it('run every woken callback even if one throws, then rethrow its error', () => {
    const store = newStore();
    const fired: string[] = [];
    store.watch({
      targets: [key('a')],
      onChange: () => {
        throw new Error('bad watcher');
      },
    });
    store.watch({ targets: [key('a')], onChange: () => fired.push('second') });
    expect(() => write(store, 1, (txn) => txn.insert(people, person('a')))).toThrow('bad watcher');
    expect(fired).toEqual(['second']);
    expect(store.snapshot().first(people, 'id', 'a')).not.toBeNull();
  });
});
