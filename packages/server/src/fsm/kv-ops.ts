import type { FsmTxn } from './quota.js';
import { kvsTable, sessionsTable } from './tables.js';
import type { KvEntry, KvOp } from './types.js';
import { userEntries } from './view.js';

/**
 * The outcome of one KV operation. A failure carries Consul's message for it (a txn
 * reports it as-is) and, for a missing or unknown session, the code a single PUT reports.
 */
export type OpOutcome =
  | { readonly ok: true; readonly results: readonly KvEntry[] }
  | { readonly ok: false; readonly what: string; readonly code: 'INVALID_SESSION' | null };

const done: OpOutcome = { ok: true, results: [] };
const quote = (text: string): string => JSON.stringify(text);
const fail = (what: string, code: 'INVALID_SESSION' | null = null): OpOutcome => ({ ok: false, what, code });

/**
 * Runs one KV operation at Raft index `index` inside `txn`, with Consul's semantics
 * (agent/consul/state/kvs.go and txn.go). Results are what a txn returns for the op:
 * the entry for a get, the written entry without its value for a write, the entries under
 * the prefix for a get-tree, nothing for deletes and checks.
 */
export function runOp(txn: FsmTxn, index: number, op: KvOp): OpOutcome {
  const existing = txn.first(kvsTable, 'id', op.key);
  switch (op.verb) {
    case 'set':
      return wrote(put(txn, index, { existing, op, session: existing?.session ?? null }));
    case 'cas':
      return cas(txn, index, op, existing);
    case 'lock':
      return lock(txn, index, op, existing);
    case 'unlock':
      return unlock(txn, index, op, existing);
    case 'delete':
      if (existing !== null) txn.delete(kvsTable, op.key);
      return done;
    case 'delete-tree':
      // The empty prefix would reach the primitives' rows too: delete user keys one by one.
      if (op.key === '') for (const entry of userEntries(txn, '')) txn.delete(kvsTable, entry.key);
      else txn.deletePrefix(kvsTable, op.key);
      return done;
    case 'delete-cas':
      // Consul: deleting a key that is already gone succeeds whatever the index.
      if (existing === null) return done;
      if (existing.modifyIndex !== op.index)
        return fail(`failed to delete key ${quote(op.key)}, index is stale`);
      txn.delete(kvsTable, op.key);
      return done;
    case 'get':
      if (existing === null) return fail(`key ${quote(op.key)} doesn't exist`);
      return { ok: true, results: [existing] };
    case 'get-tree':
      return { ok: true, results: userEntries(txn, op.key) };
    case 'check-index':
      if (existing === null) return fail(`failed to check index, key ${quote(op.key)} doesn't exist`);
      if (existing.modifyIndex !== op.index) {
        return fail(
          `failed index check for key ${quote(op.key)}, current modify index ${existing.modifyIndex} != ${op.index}`,
        );
      }
      return done;
    case 'check-session': {
      if (existing === null) return fail(`failed to check session, key ${quote(op.key)} doesn't exist`);
      const expected = op.session ?? '';
      if ((existing.session ?? '') !== expected) {
        return fail(
          `failed session check for key ${quote(op.key)}, current session ${quote(existing.session ?? '')} != ${quote(expected)}`,
        );
      }
      return done;
    }
    case 'check-not-exists':
      return existing === null ? done : fail(`key ${quote(op.key)} exists`);
  }
}

function cas(txn: FsmTxn, index: number, op: KvOp, existing: KvEntry | null): OpOutcome {
  // Index 0: only if absent. Index N: only if the key exists with ModifyIndex N.
  const matches = op.index === 0 ? existing === null : existing !== null && existing.modifyIndex === op.index;
  if (!matches) return fail(`failed to set key ${quote(op.key)}, index is stale`);
  return wrote(put(txn, index, { existing, op, session: existing?.session ?? null }));
}

function lock(txn: FsmTxn, index: number, op: KvOp, existing: KvEntry | null): OpOutcome {
  if (op.session === undefined || op.session === '') return fail('missing session', 'INVALID_SESSION');
  if (txn.first(sessionsTable, 'id', op.session) === null) {
    return fail(`invalid session ${quote(op.session)}`, 'INVALID_SESSION');
  }
  if (existing !== null && existing.session !== null && existing.session !== op.session) {
    return fail(`failed to lock key ${quote(op.key)}, lock is already held`);
  }
  // Re-acquiring a lock one holds keeps the LockIndex; a new holder increments it.
  const lockIndex =
    existing === null ? 1 : existing.session === op.session ? existing.lockIndex : existing.lockIndex + 1;
  return wrote(put(txn, index, { existing, op, session: op.session, lockIndex }));
}

function unlock(txn: FsmTxn, index: number, op: KvOp, existing: KvEntry | null): OpOutcome {
  if (op.session === undefined || op.session === '') return fail('missing session', 'INVALID_SESSION');
  if (existing === null || existing.session !== op.session) {
    return fail(`failed to unlock key ${quote(op.key)}, lock isn't held, or is held by another session`);
  }
  return wrote(put(txn, index, { existing, op, session: null }));
}

function wrote(entry: KvEntry): OpOutcome {
  return { ok: true, results: [{ ...entry, value: new Uint8Array(0) }] };
}

/**
 * Stores the op's value and flags under its key with the given session (Consul's
 * kvsSetTxn): CreateIndex kept, LockIndex kept unless given. An entry equal to the stored
 * one is not written at all, so its ModifyIndex stays and no watcher wakes (as in Consul).
 */
function put(
  txn: FsmTxn,
  index: number,
  options: { existing: KvEntry | null; op: KvOp; session: string | null; lockIndex?: number },
): KvEntry {
  const { existing, op } = options;
  const next: KvEntry = {
    key: op.key,
    value: op.value ?? new Uint8Array(0),
    flags: op.flags ?? 0,
    createIndex: existing?.createIndex ?? index,
    modifyIndex: index,
    lockIndex: options.lockIndex ?? existing?.lockIndex ?? 0,
    session: options.session,
  };
  if (existing !== null && sameContent(existing, next)) return existing;
  txn.insert(kvsTable, next);
  return next;
}

/** Consul's DirEntry.Equal: everything but the Raft indexes. */
export function sameContent(a: KvEntry, b: KvEntry): boolean {
  return (
    a.key === b.key &&
    a.flags === b.flags &&
    a.lockIndex === b.lockIndex &&
    a.session === b.session &&
    bytesEqual(a.value, b.value)
  );
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
