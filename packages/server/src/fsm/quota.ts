import { assert, defaultLimits as raftLimits } from '@conclave/raft';
import { defaultStorageLimits } from '@conclave/storage';
import type { AnyTable, TableSchema, WriteTxn } from '../state/index.js';
import { snapshotHeaderSlackBytes } from './snapshot-limits.js';
import { snapshotReferencedSessionsMax } from './snapshot-parts.js';
import { kvRowBytes, sessionRowBytes } from './snapshot-rows.js';
import { kvsTable, sessionsTable } from './tables.js';
import type { KvEntry, SessionEntry } from './types.js';

/** An expected refusal an FSM command reports; the service turns it into a ConclaveError. */
export interface FsmError {
  readonly code: 'INVALID_SESSION' | 'QUOTA_EXCEEDED';
  readonly message: string;
}

/** What kv-ops.ts and sessions.ts use of a write transaction. */
export type FsmTxn = Pick<
  WriteTxn,
  'index' | 'first' | 'lookup' | 'prefix' | 'insert' | 'delete' | 'deletePrefix'
>;

/** The bounds of one group's state, checked at apply so that every replica decides alike. */
export interface QuotaLimits {
  /** Estimated bytes of rows (live, and staged by a restore, each) a group holds at most. */
  readonly groupStateBytesMax: number;
  /** Sessions a group holds at most. */
  readonly sessionsMax: number;
}

/**
 * Asserts that a group within these bounds always takes a snapshot that every replica can
 * store and send: live and staged rows, each at most groupStateBytesMax, plus the header,
 * under both the Raft core's and the storage's snapshotBytesMax; and every kv row's session
 * within what the archive reader accepts.
 */
export function checkQuotaLimits(limits: QuotaLimits): void {
  const { groupStateBytesMax, sessionsMax } = limits;
  const snapshotBytesMax = Math.min(raftLimits.snapshotBytesMax, defaultStorageLimits.snapshotBytesMax);
  assert(
    Number.isSafeInteger(groupStateBytesMax) &&
      groupStateBytesMax > 0 &&
      2 * groupStateBytesMax + snapshotHeaderSlackBytes <= snapshotBytesMax,
    () =>
      `groupStateBytesMax ${groupStateBytesMax}: 2 x it + ${snapshotHeaderSlackBytes} must fit snapshotBytesMax ${snapshotBytesMax}`,
  );
  assert(
    Number.isSafeInteger(sessionsMax) && sessionsMax > 0 && sessionsMax <= snapshotReferencedSessionsMax,
    () => `sessionsMax ${sessionsMax} must be in [1, ${snapshotReferencedSessionsMax}]`,
  );
}

/** A kv or session row's estimated bytes: an upper bound of its encoding in a snapshot. */
function rowBytes(table: AnyTable, row: unknown): number {
  if (table === (kvsTable as unknown)) return kvRowBytes(row as KvEntry);
  assert(table === (sessionsTable as unknown), () => `no row size for table ${table.name}`);
  return sessionRowBytes(row as SessionEntry);
}

/**
 * A write transaction that counts the estimated bytes its writes add (or free, negative),
 * from the rows each insert replaces and each delete returns: the FSM keeps its state's
 * size up to date without ever scanning the tables.
 */
export class MeteredTxn implements FsmTxn {
  private delta = 0;

  constructor(private readonly txn: WriteTxn) {}

  get index(): number {
    return this.txn.index;
  }

  /** Bytes the writes so far add to the state (negative: they free more than they add). */
  get deltaBytes(): number {
    return this.delta;
  }

  first<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R | null {
    return this.txn.first(table, index, key);
  }

  lookup<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, key: string): R[] {
    return this.txn.lookup(table, index, key);
  }

  prefix<R, I extends string>(table: TableSchema<R, I>, index: NoInfer<I>, prefix: string): R[] {
    return this.txn.prefix(table, index, prefix);
  }

  insert<R>(table: TableSchema<R, string>, row: R): R | null {
    const replaced = this.txn.insert(table, row);
    const schema = table as unknown as AnyTable;
    this.delta += rowBytes(schema, row) - (replaced === null ? 0 : rowBytes(schema, replaced));
    return replaced;
  }

  delete<R>(table: TableSchema<R, string>, id: string): R | null {
    const deleted = this.txn.delete(table, id);
    if (deleted !== null) this.delta -= rowBytes(table as unknown as AnyTable, deleted);
    return deleted;
  }

  deletePrefix<R>(table: TableSchema<R, string>, prefix: string): R[] {
    const deleted = this.txn.deletePrefix(table, prefix);
    for (const row of deleted) this.delta -= rowBytes(table as unknown as AnyTable, row);
    return deleted;
  }
}

const mib = 1024 * 1024;
const inMib = (bytes: number): string => `${(bytes / mib).toFixed(1)} MiB`;

/**
 * The refusal of a write adding `addBytes` to a group holding `stateBytes`, or null if it
 * fits. A write that adds nothing (a delete, a smaller value) always fits, so a group at
 * its bound can always be brought back under it.
 */
export function stateQuotaError(options: {
  stateBytes: number;
  addBytes: number;
  limits: QuotaLimits;
}): FsmError | null {
  const { stateBytes, addBytes, limits } = options;
  if (addBytes <= 0 || stateBytes + addBytes <= limits.groupStateBytesMax) return null;
  return {
    code: 'QUOTA_EXCEEDED',
    message:
      `the group holds ${stateBytes} of its ${limits.groupStateBytesMax} bytes ` +
      `(${inMib(stateBytes)} of ${inMib(limits.groupStateBytesMax)}) and this write adds ${addBytes}: ` +
      'delete keys, or spread keys over more groups (different hash tags)',
  };
}

/** The refusal of one more session in a group holding `sessions`, or null if it fits. */
export function sessionQuotaError(options: { sessions: number; limits: QuotaLimits }): FsmError | null {
  const { sessions, limits } = options;
  if (sessions < limits.sessionsMax) return null;
  return {
    code: 'QUOTA_EXCEEDED',
    message: `the group holds ${sessions} sessions, its most (${limits.sessionsMax}): destroy sessions no longer used`,
  };
}
