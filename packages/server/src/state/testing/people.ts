import { compoundIndex, defineTable, fieldIndex } from '../schema.js';
import { StateStore } from '../store.js';

/** A small table for the store's tests: every kind of index. */
export interface Person {
  readonly id: string;
  readonly name: string;
  readonly city: string;
  readonly email: string | null;
}

export const people = defineTable<Person, 'email' | 'city' | 'cityName'>({
  name: 'people',
  idOf: (row) => row.id,
  indexes: {
    email: fieldIndex<Person, 'email'>({ field: 'email', unique: true }),
    city: fieldIndex<Person, 'city'>({ field: 'city', unique: false }),
    cityName: compoundIndex<Person>({ parts: (row) => [row.city, row.name], unique: false }),
  },
});

export interface Pet {
  readonly id: string;
  readonly owner: string;
}

export const pets = defineTable<Pet, 'owner'>({
  name: 'pets',
  idOf: (row) => row.id,
  indexes: { owner: fieldIndex<Pet, 'owner'>({ field: 'owner', unique: false }) },
});

export function person(id: string, fields: Partial<Omit<Person, 'id'>> = {}): Person {
  return { id, name: fields.name ?? id, city: fields.city ?? 'paris', email: fields.email ?? null };
}

export function newStore(limits: { watchersMax?: number; watchTargetsMax?: number } = {}): StateStore {
  return new StateStore({
    tables: [people, pets],
    limits: { watchersMax: limits.watchersMax ?? 100_000, watchTargetsMax: limits.watchTargetsMax ?? 16 },
  });
}

/** Runs one committed write transaction at `index`. */
export function write(
  store: StateStore,
  index: number,
  body: (txn: ReturnType<StateStore['begin']>) => void,
): void {
  const txn = store.begin(index);
  try {
    body(txn);
    txn.commit();
  } finally {
    if (txn.open) txn.abort();
  }
}
