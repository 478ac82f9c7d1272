import { defineTable, fieldIndex } from '../state/index.js';
import type { KvEntry, SessionEntry } from './types.js';

/**
 * The key-value table. Primary key: the key. 'session': the session holding the lock
 * (unlocked keys are left out), so invalidating a session finds its keys without a scan.
 */
export const kvsTable = defineTable<KvEntry, 'session'>({
  name: 'kvs',
  idOf: (row) => row.key,
  indexes: { session: fieldIndex<KvEntry, 'session'>({ field: 'session', unique: false }) },
});

/** The sessions table. Primary key: the id. 'node': the node a session belongs to. */
export const sessionsTable = defineTable<SessionEntry, 'node'>({
  name: 'sessions',
  idOf: (row) => row.id,
  indexes: { node: fieldIndex<SessionEntry, 'node'>({ field: 'node', unique: false }) },
});
