import { assert } from '@conclave/raft';
import { releaseSessionHolds } from './primitives/engine.js';
import { isReservedKey } from './primitives/rows.js';
import type { FsmTxn } from './quota.js';
import { kvsTable, sessionsTable } from './tables.js';
import type { SessionEntry, SessionSpec } from './types.js';

/**
 * Stores a session, or returns the stored one if its id exists (a no-op). `createIndex` is
 * group 0's index when the service copies a session created there to another group.
 */
export function createSession(
  txn: FsmTxn,
  options: { index: number; spec: SessionSpec; createIndex: number | null },
): SessionEntry {
  const stored = txn.first(sessionsTable, 'id', options.spec.id);
  if (stored !== null) return stored;
  const { id, name, node, ttlSeconds, behavior, lockDelayMs } = options.spec;
  const entry: SessionEntry = {
    id,
    name,
    node,
    ttlSeconds,
    behavior,
    lockDelayMs,
    createIndex: options.createIndex ?? options.index,
    modifyIndex: options.index,
  };
  txn.insert(sessionsTable, entry);
  return entry;
}

/**
 * Destroys a session and invalidates its locks as Consul does: 'release' clears the
 * session from each key it holds (LockIndex and value kept, ModifyIndex advanced),
 * 'delete' deletes those keys. Held keys come from the kvs 'session' index, not a scan.
 */
export function destroySession(
  txn: FsmTxn,
  options: { index: number; id: string; groupId: number },
): { existed: boolean; released: { key: string; lockDelayMs: number }[] } {
  const session = txn.first(sessionsTable, 'id', options.id);
  if (session === null) return { existed: false, released: [] };
  // The primitives' holds first: a lock passes to its next waiter, ephemeral entries go.
  releaseSessionHolds(txn, { session: session.id, index: options.index, groupId: options.groupId });
  const held = txn.lookup(kvsTable, 'session', session.id);
  assert(!held.some((entry) => isReservedKey(entry.key)), 'a session’s primitive rows are gone');
  for (const entry of held) {
    assert(entry.session === session.id, 'the session index finds only the session’s keys');
    if (session.behavior === 'delete') txn.delete(kvsTable, entry.key);
    else txn.insert(kvsTable, { ...entry, session: null, modifyIndex: options.index });
  }
  txn.delete(sessionsTable, session.id);
  return {
    existed: true,
    released: held.map((entry) => ({ key: entry.key, lockDelayMs: session.lockDelayMs })),
  };
}
