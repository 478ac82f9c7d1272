import { assert } from '@conclave/raft';
import { SnapshotReader, type StoreReader, TablesReader } from './reader.js';
import { type AnyTable, primaryIndex, type TableSchema } from './schema.js';
import { TableState } from './table.js';
import { ChangeSet, type WatchLimits, WatchRegistry, type WatchTargetName } from './watches.js';

/** What a watcher waits on: one index key, every key under a prefix, or any change to a table. */
export type WatchTarget =
  | { readonly kind: 'key'; readonly table: AnyTable; readonly index: string; readonly key: string }
  | { readonly kind: 'prefix'; readonly table: AnyTable; readonly index: string; readonly prefix: string }
  | { readonly kind: 'table'; readonly table: AnyTable };

export interface RestoreWriter {
  insert<R>(table: TableSchema<R, string>, row: R): void;
  setTableIndex(table: AnyTable, index: number): void;
}

type Tables = ReadonlyMap<string, TableState<unknown>>;

/**
 * An in-memory state store in the role go-memdb plays in Consul: tables of immutable rows
 * with B+ tree indexes, one synchronous write transaction at a time, O(1) snapshots, and
 * one-shot watchers woken after a commit by exactly the index keys it changed.
 *
 * Committed table states are frozen and never edited: a write transaction clones the
 * tables it touches (lazy copy-on-write) and a commit publishes a new map of tables, so a
 * snapshot is just the current map.
 */
export class StateStore {
  private committed: Tables;
  private writing: WriteTxn | null = null;
  private readonly watches: WatchRegistry;

  constructor(options: { tables: readonly AnyTable[]; limits: WatchLimits }) {
    const tables = new Map<string, TableState<unknown>>();
    for (const table of options.tables) {
      assert(!tables.has(table.name), () => `table ${table.name} is defined twice`);
      const state = TableState.empty(table as TableSchema<unknown>);
      state.freeze();
      tables.set(table.name, state);
    }
    this.committed = tables;
    this.watches = new WatchRegistry(options.limits);
  }

  /** A read-only view of every table as of now; later writes never change it. O(1). */
  snapshot(): StoreReader {
    return new SnapshotReader(this.committed);
  }

  get watcherCount(): number {
    return this.watches.size;
  }

  /**
   * Opens the write transaction for write index `index` (the Raft index). One at a time;
   * use it as `try { ...; txn.commit() } finally { if (txn.open) txn.abort() }` so that a
   * failure midway leaves nothing behind.
   */
  begin(index: number): WriteTxn {
    assert(Number.isSafeInteger(index) && index >= 0, () => `write index ${index} is a non-negative integer`);
    assert(this.writing === null, 'one write transaction at a time');
    const txn = new WriteTxn({
      index,
      committed: this.committed,
      finish: (result) => this.finish(txn, result),
    });
    this.writing = txn;
    return txn;
  }

  /**
   * Registers a one-shot watcher: `onChange` runs once, after the first commit that changes
   * a target (or a restore), then the watcher is gone. Returns a cancel function. Register
   * in the same synchronous turn as the read it guards, so no commit can fall in between.
   * Throws OVERLOADED beyond `watchersMax`.
   */
  watch(options: { targets: readonly WatchTarget[]; onChange: () => void }): () => void {
    const names = options.targets.map((target) => this.targetName(target));
    return this.watches.add(names, options.onChange);
  }

  /**
   * Replaces every table with what `fill` inserts, then wakes every watcher. If `fill`
   * throws, nothing changes.
   */
  restore(fill: (writer: RestoreWriter) => void): void {
    assert(this.writing === null, 'no write transaction is open during a restore');
    const tables = new Map<string, TableState<unknown>>();
    for (const [name, state] of this.committed) tables.set(name, TableState.empty(state.schema));
    const stateOf = <R>(table: TableSchema<R, string>): TableState<R> => {
      const state = tables.get(table.name);
      assert(
        state !== undefined && state.schema === (table as unknown),
        () => `no table ${table.name} in this store`,
      );
      return state as TableState<R>;
    };
    fill({
      insert: (table, row) => {
        const replaced = stateOf(table).insert(row, () => {});
        assert(replaced === null, () => `restore: table ${table.name} has a duplicate ${table.idOf(row)}`);
      },
      setTableIndex: (table, index) => {
        assert(Number.isSafeInteger(index) && index >= 0, () => `restore: table index ${index}`);
        stateOf(table).lastIndex = index;
      },
    });
    for (const state of tables.values()) state.freeze();
    this.committed = tables;
    runAll(this.watches.takeAll());
  }

  private finish(txn: WriteTxn, result: { tables: Tables; changes: ChangeSet } | null): void {
    assert(this.writing === txn, 'the open transaction finishes');
    this.writing = null;
    if (result === null || result.changes.empty) return;
    this.committed = result.tables;
    runAll(this.watches.take(result.changes));
  }

  private targetName(target: WatchTarget): WatchTargetName {
    const state = this.committed.get(target.table.name);
    assert(
      state !== undefined && state.schema === (target.table as unknown),
      () => `no table ${target.table.name} in this store`,
    );
    if (target.kind === 'table') return { kind: 'table', table: target.table.name };
    assert(
      target.index === primaryIndex || state.schema.indexes.has(target.index),
      () => `table ${target.table.name} has no index ${target.index}`,
    );
    return target.kind === 'key'
      ? { kind: 'key', table: target.table.name, index: target.index, key: target.key }
      : { kind: 'prefix', table: target.table.name, index: target.index, prefix: target.prefix };
  }
}

/**
 * A write transaction. Reads see its own writes. Nothing is visible to snapshots or
 * watchers until `commit()`; `abort()` drops every change.
 */
export class WriteTxn extends TablesReader {
  readonly index: number;
  private readonly edited = new Map<string, TableState<unknown>>();
  private readonly committed: Tables;
  private readonly changes = new ChangeSet();
  private readonly finish: (result: { tables: Tables; changes: ChangeSet } | null) => void;
  private isOpen = true;

  constructor(options: {
    index: number;
    committed: Tables;
    finish: (result: { tables: Tables; changes: ChangeSet } | null) => void;
  }) {
    super();
    this.index = options.index;
    this.committed = options.committed;
    this.finish = options.finish;
  }

  get open(): boolean {
    return this.isOpen;
  }

  protected resolve(name: string): TableState<unknown> | undefined {
    return this.edited.get(name) ?? this.committed.get(name);
  }

  /** Inserts the row, or replaces the row with its primary key; returns the replaced row. */
  insert<R>(table: TableSchema<R, string>, row: R): R | null {
    return this.editable(table).insert(row, (index, key) => this.changes.touch(table.name, index, key));
  }

  /** Deletes the row with this primary key; returns it, or null if there was none. */
  delete<R>(table: TableSchema<R, string>, id: string): R | null {
    return this.editable(table).delete(id, (index, key) => this.changes.touch(table.name, index, key));
  }

  /** Deletes every row whose primary key starts with `prefix`; returns them by key. */
  deletePrefix<R>(table: TableSchema<R, string>, prefix: string): R[] {
    const state = this.editable(table);
    const rows = state.prefix(primaryIndex, prefix);
    for (const row of rows)
      state.delete(table.idOf(row), (index, key) => this.changes.touch(table.name, index, key));
    return rows;
  }

  /** Publishes the changes, stamps changed tables with this index, then fires watchers. */
  commit(): void {
    assert(this.isOpen, 'the transaction is still open');
    for (const [name, state] of this.edited) {
      assert(
        !this.changes.tables.has(name) || this.index >= state.lastIndex,
        () => `table ${name}: write index ${this.index} below its last change ${state.lastIndex}`,
      );
    }
    this.close();
    const tables = new Map(this.committed);
    for (const [name, state] of this.edited) {
      if (!this.changes.tables.has(name)) continue;
      state.lastIndex = this.index;
      state.freeze();
      tables.set(name, state);
    }
    this.finish({ tables, changes: this.changes });
  }

  abort(): void {
    this.close();
    this.finish(null);
  }

  private close(): void {
    assert(this.isOpen, 'the transaction is still open');
    this.isOpen = false;
  }

  private editable<R>(table: TableSchema<R, string>): TableState<R> {
    assert(this.isOpen, 'writes go to an open transaction');
    let state = this.edited.get(table.name);
    if (state === undefined) {
      state = this.state(table).clone() as TableState<unknown>;
      this.edited.set(table.name, state);
    }
    return state as TableState<R>;
  }
}

/** Runs every callback even if one throws, then rethrows the first error: none is skipped. */
function runAll(callbacks: readonly (() => void)[]): void {
  let first: { error: unknown } | null = null;
  for (const callback of callbacks) {
    try {
      callback();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first !== null) throw first.error;
}
