import type { StoreReader } from '../state/index.js';
import { isReservedKey } from './primitives/rows.js';
import { kvsTable, sessionsTable } from './tables.js';
import type { KvEntry, SessionEntry } from './types.js';

/**
 * The FSM's queries over one consistent state. Entries are the stored values themselves:
 * frozen objects whose `value` bytes callers must not modify.
 */
export interface FsmQueries {
  getKey(key: string): KvEntry | null;
  /** Every entry whose key starts with `prefix`, sorted by key. */
  list(prefix: string): KvEntry[];
  /** Keys under `prefix`; with a separator, deeper keys roll up to prefix + segment + separator. */
  keys(options: { prefix: string; separator: string | null }): string[];
  getSession(id: string): SessionEntry | null;
  /** Sessions sorted by id, all of them or one node's. */
  listSessions(options: { node: string | null }): SessionEntry[];
  /** Raft index of the last change to the kvs table (0 before any). */
  kvIndex(): number;
  /** Raft index of the last change to the sessions table (0 before any). */
  sessionIndex(): number;
}

/** A read-only view as of one moment: later applies never change it. */
export interface FsmView extends FsmQueries {
  /** Raft index of the last entry applied when the view was taken. */
  appliedIndex(): number;
}

export function queriesOver(reader: StoreReader): FsmQueries {
  return {
    getKey: (key) => reader.first(kvsTable, 'id', key),
    list: (prefix) => userEntries(reader, prefix),
    keys: (options) => rollUpKeys({ entries: userEntries(reader, options.prefix), ...options }),
    getSession: (id) => reader.first(sessionsTable, 'id', id),
    listSessions: (options) =>
      options.node === null ? reader.all(sessionsTable) : reader.lookup(sessionsTable, 'node', options.node),
    kvIndex: () => reader.tableIndex(kvsTable),
    sessionIndex: () => reader.tableIndex(sessionsTable),
  };
}

/**
 * Consul's `?keys&separator=`: a key with the separator after the prefix becomes the prefix,
 * the segment up to the separator and the separator itself; equal roll-ups are listed once
 * (they are adjacent, the entries being sorted). An empty separator rolls nothing up.
 */
function rollUpKeys(options: {
  entries: readonly KvEntry[];
  prefix: string;
  separator: string | null;
}): string[] {
  const { prefix, separator } = options;
  const keys: string[] = [];
  let last: string | null = null;
  for (const { key } of options.entries) {
    if (separator === null || separator === '') {
      keys.push(key);
      continue;
    }
    const at = key.indexOf(separator, prefix.length);
    if (at === -1) {
      keys.push(key);
      continue;
    }
    const rolled = key.slice(0, at + separator.length);
    if (rolled !== last) keys.push(rolled);
    last = rolled;
  }
  return keys;
}

/**
 * The KV entries under a prefix that users own. Primitives' rows (fsm/primitives/rows.ts)
 * start with U+0000, which no user key or prefix can hold, so only the empty prefix reaches
 * them; they sort first, and are cut off there.
 */
export function userEntries(reader: Pick<StoreReader, 'prefix'>, prefix: string): KvEntry[] {
  const entries = reader.prefix(kvsTable, 'id', prefix);
  if (prefix !== '') return entries;
  const firstUser = entries.findIndex((entry) => !isReservedKey(entry.key));
  return firstUser < 0 ? [] : firstUser === 0 ? entries : entries.slice(firstUser);
}
