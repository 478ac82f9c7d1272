import { assert } from '@conclave/raft';

/** The name of every table's primary index: unique, and every row has a key in it. */
export const primaryIndex = 'id';

/** A secondary index: a string key computed from each row. */
export interface IndexSchema<R> {
  /**
   * Unique: at most one row per key; inserting a second row with a key another row holds
   * is a caller bug and fails an assertion (the caller must look the key up first).
   * Non-unique: any number of rows per key, ordered by primary key within it.
   */
  readonly unique: boolean;
  /** The row's key in this index, or null to leave the row out (go-memdb's AllowMissing). */
  readonly keyOf: (row: R) => string | null;
}

/**
 * A table: rows of type R, a primary key, and named secondary indexes. `I` is the union of
 * the table's index names (including 'id') so that queries name indexes that exist.
 */
export interface TableSchema<R, I extends string = string> {
  readonly name: string;
  readonly idOf: (row: R) => string;
  readonly indexes: ReadonlyMap<string, IndexSchema<R>>;
  /** Phantom: carries the index names to the query methods' types. */
  readonly indexNames?: I;
}

/** Any table, whatever its row type: for the store's list of tables. */
export type AnyTable = TableSchema<never, string>;

export function defineTable<R, I extends string = never>(options: {
  name: string;
  idOf: (row: R) => string;
  indexes?: { readonly [name in I]: IndexSchema<R> };
}): TableSchema<R, I | typeof primaryIndex> {
  assert(
    options.name.length > 0 && !options.name.includes('\u0000'),
    'a table name is non-empty, without NUL',
  );
  const indexes = new Map<string, IndexSchema<R>>();
  const given: Record<string, IndexSchema<R>> = options.indexes ?? {};
  for (const name of Object.keys(given).sort()) {
    assert(name !== primaryIndex, () => `table ${options.name}: '${primaryIndex}' is the primary index`);
    assert(name.length > 0 && !name.includes('\u0000'), 'an index name is non-empty, without NUL');
    const index = given[name];
    assert(index !== undefined, 'index listed by Object.keys');
    indexes.set(name, index);
  }
  return { name: options.name, idOf: options.idOf, indexes };
}

/** An index over one string field; a null field leaves the row out of the index. */
export function fieldIndex<
  R,
  F extends { [K in keyof R]: R[K] extends string | null ? K : never }[keyof R],
>(options: { field: F; unique: boolean }): IndexSchema<R> {
  return {
    unique: options.unique,
    keyOf: (row) => {
      const value: unknown = row[options.field];
      assert(value === null || typeof value === 'string', () => `field ${String(options.field)} is a string`);
      return value;
    },
  };
}

/**
 * Joins several fields into one index key that sorts like the tuple of its parts: each part
 * is escaped so it holds no NUL (\u0000 -> \u0001\u0001, \u0001 -> \u0001\u0002) and ends
 * with NUL, which sorts below every escaped character. A prefix query on
 * `compoundKey([a])` then finds exactly the rows whose first part is `a`.
 */
export function compoundKey(parts: readonly string[]): string {
  let out = '';
  for (const part of parts) {
    for (const char of part)
      out += char === '\u0000' ? '\u0001\u0001' : char === '\u0001' ? '\u0001\u0002' : char;
    out += '\u0000';
  }
  return out;
}

/** An index computed from several fields of a row; null from any part leaves the row out. */
export function compoundIndex<R>(options: {
  parts: (row: R) => readonly (string | null)[];
  unique: boolean;
}): IndexSchema<R> {
  return {
    unique: options.unique,
    keyOf: (row) => {
      const parts = options.parts(row);
      const present: string[] = [];
      for (const part of parts) {
        if (part === null) return null;
        present.push(part);
      }
      return compoundKey(present);
    },
  };
}
