import sortedBtree from 'sorted-btree';

/**
 * sorted-btree is CommonJS with `exports.default = BTree`. Node hands an ES default import
 * the whole exports object, while vitest's interop unwraps `__esModule` and hands the class
 * itself; accepting both keeps the build and the tests on one code path.
 */
const loaded: unknown = sortedBtree;
export const BTree: typeof sortedBtree.default =
  typeof loaded === 'function' ? (loaded as typeof sortedBtree.default) : sortedBtree.default;
export type BTree<K, V> = InstanceType<typeof sortedBtree.default<K, V>>;

/** The key of a non-unique index: the indexed value, then the row's primary key. */
export type PairKey = readonly [indexKey: string, id: string];

/**
 * Orders pair keys by index value, then by primary key, so all rows sharing a value sit
 * together (one range scan finds them) and each row has its own slot. A tuple rather
 * than a joined string, so no character in a value can make two pairs collide.
 */
export function comparePairs(a: PairKey, b: PairKey): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
