import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoreReader } from './reader.js';
import { newStore, type Person, people } from './testing/people.js';

/**
 * Random transactions (inserts, deletes, prefix deletes; committed or aborted) against a
 * plain Map model. After each one the store must equal the model through every index, old
 * snapshots must still equal the model of their time, and watchers must fire exactly when
 * a committed transaction changed a row under their key or prefix.
 */

type Op =
  | { readonly kind: 'insert'; readonly row: Person }
  | { readonly kind: 'delete'; readonly id: string }
  | { readonly kind: 'deletePrefix'; readonly prefix: string };

interface Step {
  readonly ops: readonly Op[];
  readonly commit: boolean;
  readonly watchKeys: readonly string[];
  readonly watchPrefixes: readonly string[];
}

const idArb = fc.string({ unit: fc.constantFrom('a', 'b', '/'), maxLength: 4 });
const rowArb = fc.record({
  id: idArb,
  name: fc.constantFrom('x', 'y'),
  city: fc.constantFrom('oslo', 'rome', 'rome2'),
  withEmail: fc.boolean(),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: rowArb.map(({ withEmail, ...r }) => ({
      kind: 'insert' as const,
      row: { ...r, email: withEmail ? `${r.id}@x` : null },
    })),
  },
  { weight: 2, arbitrary: idArb.map((id) => ({ kind: 'delete' as const, id })) },
  { weight: 1, arbitrary: idArb.map((prefix) => ({ kind: 'deletePrefix' as const, prefix })) },
);
const stepArb: fc.Arbitrary<Step> = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 4 }),
  commit: fc.boolean(),
  watchKeys: fc.array(idArb, { maxLength: 3 }),
  watchPrefixes: fc.array(idArb, { maxLength: 3 }),
});

type Model = Map<string, Person>;
const sorted = (rows: Iterable<Person>): Person[] =>
  [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

function expectEqual(view: StoreReader, model: Model): void {
  const rows = sorted(model.values());
  expect(view.all(people)).toEqual(rows);
  expect(view.count(people)).toBe(model.size);
  for (const city of ['oslo', 'rome', 'rome2']) {
    expect(view.lookup(people, 'city', city)).toEqual(rows.filter((r) => r.city === city));
  }
  expect(view.prefix(people, 'city', 'rome')).toEqual([
    ...rows.filter((r) => r.city === 'rome'),
    ...rows.filter((r) => r.city === 'rome2'),
  ]);
  for (const prefix of ['', 'a', 'a/', 'b']) {
    expect(view.prefix(people, 'id', prefix)).toEqual(rows.filter((r) => r.id.startsWith(prefix)));
  }
  for (const row of rows) {
    if (row.email !== null) expect(view.first(people, 'email', row.email)).toEqual(row);
  }
}

/** Applies ops to a copy of the model; returns it and the ids whose rows changed. */
function applyModel(model: Model, ops: readonly Op[]): { next: Model; changed: Set<string> } {
  const next = new Map(model);
  const changed = new Set<string>();
  for (const op of ops) {
    if (op.kind === 'insert') {
      next.set(op.row.id, op.row);
      changed.add(op.row.id);
    } else if (op.kind === 'delete') {
      if (next.delete(op.id)) changed.add(op.id);
    } else {
      for (const id of [...next.keys()]) {
        if (id.startsWith(op.prefix)) {
          next.delete(id);
          changed.add(id);
        }
      }
    }
  }
  return { next, changed };
}

describe('state store against a Map model', () => {
  it('agrees on every index, keeps snapshots, and fires exactly the affected watchers', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 30 }), (steps) => {
        const store = newStore();
        let model: Model = new Map();
        const snapshots: { view: StoreReader; model: Model }[] = [];
        steps.forEach((step, i) => {
          const fired = new Set<string>();
          const cancels = [
            ...step.watchKeys.map((key) =>
              store.watch({
                targets: [{ kind: 'key', table: people, index: 'id', key }],
                onChange: () => fired.add(`key:${key}`),
              }),
            ),
            ...step.watchPrefixes.map((prefix) =>
              store.watch({
                targets: [{ kind: 'prefix', table: people, index: 'id', prefix }],
                onChange: () => fired.add(`prefix:${prefix}`),
              }),
            ),
          ];
          const txn = store.begin(i + 1);
          for (const op of step.ops) {
            if (op.kind === 'insert') {
              // Unique emails are derived from ids, so only the row's own id can hold one.
              txn.insert(people, op.row);
            } else if (op.kind === 'delete') txn.delete(people, op.id);
            else txn.deletePrefix(people, op.prefix);
          }
          const { next, changed } = applyModel(model, step.ops);
          if (step.commit) {
            txn.commit();
            model = next;
          } else txn.abort();
          const expected = new Set<string>();
          if (step.commit) {
            for (const key of step.watchKeys) if (changed.has(key)) expected.add(`key:${key}`);
            for (const prefix of step.watchPrefixes) {
              if ([...changed].some((id) => id.startsWith(prefix))) expected.add(`prefix:${prefix}`);
            }
          }
          expect([...fired].sort()).toEqual([...expected].sort());
          for (const cancel of cancels) cancel();
          expect(store.watcherCount).toBe(0);
          expectEqual(store.snapshot(), model);
          if (i % 5 === 0) snapshots.push({ view: store.snapshot(), model });
        });
        for (const { view, model: then } of snapshots) expectEqual(view, then);
      }),
      { numRuns: 200 },
    );
  });
});
