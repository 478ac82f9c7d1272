import {
  fnv1a32Utf8,
  hashTag,
  isPartitionedKind,
  isPrimitiveKind,
  type PrimitiveKind,
} from '@conclave/protocol';
import { assert } from '@conclave/raft';

/**
 * Where primitives keep their state: rows of the group's KV table under a reserved
 * namespace. Every reserved key starts with U+0000, which the API refuses in user keys, so
 * no user request can name, list or delete one; snapshots, restores, quotas and watches
 * carry them as they carry any row.
 *
 * - A primitive's row: `\0{<kind>/<h(name)>}\0<name>` for a whole primitive, and
 *   `\0{<kind>/<h(name)>/<h(key)>}\0<name>\0<key>` for one entry of a partitioned one. The
 *   hash tag (protocol's groupOfKey) puts the row in the group the service sends it to.
 * - A hold: `\0h\0<session>\0<row key>`, an empty row whose `session` field names the
 *   session, one per session a primitive's state refers to (a lock's holder and waiters, a
 *   candidate, an ephemeral entry). Destroying a session finds its holds through the KV
 *   table's session index, with no scan.
 * - A session's results: `\0r\0<session>`, the last results of the session's calls in this
 *   group, so that a retried call is answered, not applied again (exactly once).
 */
export const reservedKeyPrefix = '\u0000';

export function isReservedKey(key: string): boolean {
  return key.startsWith(reservedKeyPrefix);
}

/** True for a primitive's own row (not a hold, a results row or the fence count). */
export function isPrimitiveRow(key: string): boolean {
  return key.startsWith('\u0000{');
}

const hex8 = (text: string): string => fnv1a32Utf8(text).toString(16).padStart(8, '0');

/** The row holding a whole primitive, or (with `key`) one entry of a partitioned one. */
export function primitiveRowKey(options: { kind: PrimitiveKind; name: string; key?: string }): string {
  const { kind, name, key } = options;
  assert(isPartitionedKind(kind) === (key !== undefined), () => `${kind}: an entry key iff partitioned`);
  if (key === undefined) return `\u0000{${kind}/${hex8(name)}}\u0000${name}`;
  // A key's own {hash tag} picks its group, so keys sharing one share a group (transactions).
  return `\u0000{${kind}/${hex8(name)}/${hex8(hashTag(key))}}\u0000${name}\u0000${key}`;
}

/**
 * The prefix of every entry row of a partitioned primitive in a group (and of other
 * primitives whose names share the hash: filter with `entryOfRow`).
 */
export function entriesPrefix(options: { kind: PrimitiveKind; name: string }): string {
  assert(isPartitionedKind(options.kind), () => `${options.kind} has no entries`);
  return `\u0000{${options.kind}/${hex8(options.name)}/`;
}

/** The entry key of a partitioned primitive's row, or null if the row is another name's. */
export function entryKeyOfRow(options: { rowKey: string; name: string }): string | null {
  const { rowKey, name } = options;
  const start = rowKey.indexOf('}\u0000');
  assert(start > 0, () => `not a primitive entry row: ${JSON.stringify(rowKey)}`);
  const rest = rowKey.slice(start + 2);
  if (!rest.startsWith(`${name}\u0000`)) return null;
  return rest.slice(name.length + 1);
}

export function holdRowKey(options: { session: string; rowKey: string }): string {
  return `\u0000h\u0000${options.session}\u0000${options.rowKey}`;
}

/** The primitive row a hold refers to, or null if `key` is not a hold. */
export function heldRowOf(key: string): string | null {
  if (!key.startsWith('\u0000h\u0000')) return null;
  const end = key.indexOf('\u0000', 3);
  assert(end > 3, () => `a hold row names its session: ${JSON.stringify(key)}`);
  return key.slice(end + 1);
}

export function resultsRowKey(session: string): string {
  return `\u0000r\u0000${session}`;
}

/** The kind, name and (partitioned) entry key a primitive's row belongs to. */
export function rowIdentity(rowKey: string): { kind: PrimitiveKind; name: string; key?: string } {
  assert(isPrimitiveRow(rowKey), () => `a primitive row: ${JSON.stringify(rowKey)}`);
  const kind = rowKey.slice(2, rowKey.indexOf('/'));
  assert(isPrimitiveKind(kind), () => `a primitive row of a known kind: ${JSON.stringify(rowKey)}`);
  const rest = rowKey.slice(rowKey.indexOf('}\u0000') + 2);
  if (!isPartitionedKind(kind)) return { kind, name: rest };
  const split = rest.indexOf('\u0000');
  assert(split > 0, () => `an entry row names its key: ${JSON.stringify(rowKey)}`);
  return { kind, name: rest.slice(0, split), key: rest.slice(split + 1) };
}
