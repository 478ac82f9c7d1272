import { assert } from '@conclave/raft';
import { BTree, comparePairs, compareStrings, type PairKey } from './btree.js';
import { type IndexSchema, primaryIndex, type TableSchema } from './schema.js';

/** Told of every index key a write changes: the key a row left and the key it took. */
export type TouchFn = (index: string, key: string) => void;

type SecondaryTree<R> =
  | { readonly unique: true; readonly tree: BTree<string, R> }
  | { readonly unique: false; readonly tree: BTree<PairKey, R> };

/**
 * One table's rows and indexes as B+ trees. The primary tree maps id -> row; a unique index
 * maps key -> row; a non-unique index maps [key, id] -> row (see comparePairs). Rows are
 * stored by reference in every tree, so they are frozen on insert: a row is a value.
 *
 * `clone()` is O(number of indexes): each tree clone is lazy copy-on-write, so a write
 * transaction edits its clone while readers of the original see nothing change.
 */
export class TableState<R> {
  private constructor(
    readonly schema: TableSchema<R>,
    private readonly primary: BTree<string, R>,
    private readonly secondary: ReadonlyMap<string, SecondaryTree<R>>,
    /** The write index of the table's last change (0 before any). */
    public lastIndex: number,
  ) {}

  static empty<R>(schema: TableSchema<R>): TableState<R> {
    const secondary = new Map<string, SecondaryTree<R>>();
    for (const [name, index] of schema.indexes) secondary.set(name, emptyTree<R>(index));
    return new TableState(schema, new BTree<string, R>(undefined, compareStrings), secondary, 0);
  }

  clone(): TableState<R> {
    const secondary = new Map<string, SecondaryTree<R>>();
    for (const [name, index] of this.secondary) {
      secondary.set(
        name,
        index.unique
          ? { unique: true, tree: index.tree.clone() }
          : { unique: false, tree: index.tree.clone() },
      );
    }
    return new TableState(this.schema, this.primary.clone(), secondary, this.lastIndex);
  }

  /** Committed state is never edited again: later writes go to clones. This enforces it. */
  freeze(): void {
    this.primary.freeze();
    for (const index of this.secondary.values()) index.tree.freeze();
  }

  get size(): number {
    return this.primary.size;
  }

  /** The row with this key in a unique index (or the primary), or null. */
  first(index: string, key: string): R | null {
    if (index === primaryIndex) return this.primary.get(key) ?? null;
    const tree = this.tree(index);
    if (tree.unique) return tree.tree.get(key) ?? null;
    const found = tree.tree.getPairOrNextHigher([key, '']);
    return found !== undefined && found[0][0] === key ? found[1] : null;
  }

  /** Every row with exactly this key in the index, by primary key. */
  lookup(index: string, key: string): R[] {
    if (index === primaryIndex || this.tree(index).unique) {
      const row = this.first(index, key);
      return row === null ? [] : [row];
    }
    return this.scan(index, key, (indexKey) => indexKey === key);
  }

  /** Every row whose key in the index starts with `prefix`, by key (then primary key). */
  prefix(index: string, prefix: string): R[] {
    return this.scan(index, prefix, (indexKey) => indexKey.startsWith(prefix));
  }

  /** Every row, by primary key. */
  all(): R[] {
    return this.primary.valuesArray();
  }

  /**
   * Inserts or replaces the row with the same primary key and returns the replaced one.
   * A unique index key already held by another row is a caller bug: it asserts, before
   * anything is changed.
   */
  insert(row: R, touch: TouchFn): R | null {
    Object.freeze(row);
    const id = this.schema.idOf(row);
    const old = this.primary.get(id) ?? null;
    for (const [name, index] of this.secondary) {
      if (!index.unique) continue;
      const key = this.keyOf(name, row);
      if (key === null) continue;
      const holder = index.tree.get(key);
      assert(
        holder === undefined || this.schema.idOf(holder) === id,
        () => `table ${this.schema.name}: unique index ${name} already holds ${JSON.stringify(key)}`,
      );
    }
    if (old !== null) this.unindex(old, touch);
    this.primary.set(id, row);
    touch(primaryIndex, id);
    for (const [name, index] of this.secondary) {
      const key = this.keyOf(name, row);
      if (key === null) continue;
      if (index.unique) index.tree.set(key, row);
      else index.tree.set([key, id], row);
      touch(name, key);
    }
    return old;
  }

  /** Deletes the row with this primary key and returns it, or null if there was none. */
  delete(id: string, touch: TouchFn): R | null {
    const old = this.primary.get(id);
    if (old === undefined) return null;
    this.unindex(old, touch);
    const deleted = this.primary.delete(id);
    assert(deleted, 'a row found is deleted');
    touch(primaryIndex, id);
    return old;
  }

  private unindex(row: R, touch: TouchFn): void {
    const id = this.schema.idOf(row);
    for (const [name, index] of this.secondary) {
      const key = this.keyOf(name, row);
      if (key === null) continue;
      const deleted = index.unique ? index.tree.delete(key) : index.tree.delete([key, id]);
      assert(deleted, () => `table ${this.schema.name}: index ${name} lost ${JSON.stringify(key)}`);
      touch(name, key);
    }
  }

  private keyOf(name: string, row: R): string | null {
    const schema = this.schema.indexes.get(name);
    assert(schema !== undefined, () => `table ${this.schema.name} has no index ${name}`);
    return schema.keyOf(row);
  }

  private tree(index: string): SecondaryTree<R> {
    const tree = this.secondary.get(index);
    assert(tree !== undefined, () => `table ${this.schema.name} has no index ${index}`);
    return tree;
  }

  /** Rows from the first index key >= `from` while `keep(indexKey)` holds. */
  private scan(index: string, from: string, keep: (indexKey: string) => boolean): R[] {
    const out: R[] = [];
    if (index === primaryIndex) {
      for (const [key, row] of this.primary.entries(from)) {
        if (!keep(key)) break;
        out.push(row);
      }
      return out;
    }
    const tree = this.tree(index);
    if (tree.unique) {
      for (const [key, row] of tree.tree.entries(from)) {
        if (!keep(key)) break;
        out.push(row);
      }
      return out;
    }
    for (const [key, row] of tree.tree.entries([from, ''])) {
      if (!keep(key[0])) break;
      out.push(row);
    }
    return out;
  }
}

function emptyTree<R>(index: IndexSchema<R>): SecondaryTree<R> {
  return index.unique
    ? { unique: true, tree: new BTree<string, R>(undefined, compareStrings) }
    : { unique: false, tree: new BTree<PairKey, R>(undefined, comparePairs) };
}
