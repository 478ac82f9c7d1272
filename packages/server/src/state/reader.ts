import { assert } from '@conclave/raft';
import type { AnyTable, TableSchema } from './schema.js';
import type { TableState } from './table.js';

/** The read side shared by a snapshot and a write transaction. Results are sorted. */
export interface StoreReader {
  /** The row with this key in a unique index ('id' is the primary key), or null; in a non-unique one, its lowest id. */
  first<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R | null;
  /** Every row with exactly this key in the index (by primary key within it). */
  lookup<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R[];
  /** Every row whose index key starts with `prefix`, by index key then primary key. */
  prefix<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, prefix: string): R[];
  /** Every row, by primary key. */
  all<R>(table: TableSchema<R, string>): R[];
  count(table: AnyTable): number;
  /** The write index of the table's last change, 0 before any. */
  tableIndex(table: AnyTable): number;
}

/** Reads over table states that must not change while they are read. */
export abstract class TablesReader implements StoreReader {
  protected abstract resolve(name: string): TableState<unknown> | undefined;

  first<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R | null {
    return this.state(table).first(index, key);
  }

  lookup<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R[] {
    return this.state(table).lookup(index, key);
  }

  prefix<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, prefix: string): R[] {
    return this.state(table).prefix(index, prefix);
  }

  all<R>(table: TableSchema<R, string>): R[] {
    return this.state(table).all();
  }

  count(table: AnyTable): number {
    return this.stateOf(table.name).size;
  }

  tableIndex(table: AnyTable): number {
    return this.stateOf(table.name).lastIndex;
  }

  protected state<R>(table: TableSchema<R, string>): TableState<R> {
    const state = this.stateOf(table.name);
    assert(
      state.schema === (table as unknown),
      () => `table ${table.name} is not the schema this store was built with`,
    );
    // The schema identity check above is what makes this narrowing sound.
    return state as TableState<R>;
  }

  protected stateOf(name: string): TableState<unknown> {
    const state = this.resolve(name);
    assert(state !== undefined, () => `no table ${name} in this store`);
    return state;
  }
}

/** A snapshot: reads over one published map of frozen table states. */
export class SnapshotReader extends TablesReader {
  constructor(private readonly tables: ReadonlyMap<string, TableState<unknown>>) {
    super();
  }

  protected resolve(name: string): TableState<unknown> | undefined {
    return this.tables.get(name);
  }
}
