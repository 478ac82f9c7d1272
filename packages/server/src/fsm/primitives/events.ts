import { assert } from '@conclave/raft';
import type { TableSchema } from '../../state/index.js';
import type { FsmTxn } from '../quota.js';
import { kvsTable } from '../tables.js';
import type { KvEntry } from '../types.js';
import { isPrimitiveRow } from './rows.js';

/** One change of a primitive's row: its new encoded state, or null when the row went. */
export interface RowChange {
  readonly index: number;
  readonly rowKey: string;
  readonly value: Uint8Array | null;
}

export interface EventLogLimits {
  /** Changes one group keeps for event streams at most; older ones are compacted away. */
  readonly eventLogChangesMax: number;
  /** Bytes of states those changes hold at most. */
  readonly eventLogBytesMax: number;
}

export const defaultEventLogLimits: EventLogLimits = {
  eventLogChangesMax: 8192,
  eventLogBytesMax: 4 * 1024 * 1024,
};

/**
 * The recent changes of one group's primitives, for event streams that resume where they
 * left off. It lives beside the replicated state, not in it: every replica applies the same
 * entries, so every replica records the same changes in the same order, but a restart or a
 * snapshot install starts it afresh. Complete after `floor`: a stream resuming from a
 * version at or past it misses nothing; one from an older version is told "compacted".
 */
export class PrimitiveEventLog {
  private changes: RowChange[] = [];
  /** Where the live part of `changes` starts: dropping from the front is O(1). */
  private start = 0;
  private bytes = 0;
  private floorIndex = 0;

  constructor(private readonly limits: EventLogLimits = defaultEventLogLimits) {}

  /** Every change after this index is here. */
  get floor(): number {
    return this.floorIndex;
  }

  /** Forgets everything: changes up to `index` are no longer known (a snapshot was installed). */
  reset(index: number): void {
    this.changes = [];
    this.start = 0;
    this.bytes = 0;
    this.floorIndex = index;
  }

  /** Records one entry's changes, the last per row only. */
  append(index: number, changes: readonly Omit<RowChange, 'index'>[]): void {
    const last = this.changes.at(-1);
    assert(last === undefined || last.index < index, 'changes are recorded in index order');
    const latest = new Map<string, Uint8Array | null>();
    for (const change of changes) latest.set(change.rowKey, change.value);
    for (const [rowKey, value] of latest) {
      this.changes.push({ index, rowKey, value });
      this.bytes += value?.byteLength ?? 0;
    }
    this.trim();
  }

  /** The changes after `after` of the rows `matches` picks, or null if some may be gone. */
  since(options: { after: number; matches: (rowKey: string) => boolean }): RowChange[] | null {
    if (options.after < this.floorIndex) return null;
    const found: RowChange[] = [];
    for (let i = this.start; i < this.changes.length; i++) {
      const change = this.changes[i] as RowChange;
      if (change.index > options.after && options.matches(change.rowKey)) found.push(change);
    }
    return found;
  }

  private trim(): void {
    const { eventLogChangesMax, eventLogBytesMax } = this.limits;
    while (this.changes.length - this.start > eventLogChangesMax || this.bytes > eventLogBytesMax) {
      const dropped = this.changes[this.start] as RowChange;
      this.start++;
      this.bytes -= dropped.value?.byteLength ?? 0;
      this.floorIndex = Math.max(this.floorIndex, dropped.index);
    }
    // Now and then, give back the dropped front's memory.
    if (this.start > eventLogChangesMax) {
      this.changes = this.changes.slice(this.start);
      this.start = 0;
    }
  }
}

/**
 * A transaction that notes every write of a primitive's row, so that the FSM can record
 * what an entry changed without the engine or the session code knowing about events.
 */
export class ChangeRecordingTxn implements FsmTxn {
  readonly changes: Omit<RowChange, 'index'>[] = [];

  constructor(private readonly txn: FsmTxn) {}

  get index(): number {
    return this.txn.index;
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
    if (isKvTable(table) && isPrimitiveRow((row as KvEntry).key)) {
      this.changes.push({ rowKey: (row as KvEntry).key, value: (row as KvEntry).value });
    }
    return this.txn.insert(table, row);
  }

  delete<R>(table: TableSchema<R, string>, id: string): R | null {
    const deleted = this.txn.delete(table, id);
    if (deleted !== null && isKvTable(table) && isPrimitiveRow(id))
      this.changes.push({ rowKey: id, value: null });
    return deleted;
  }

  deletePrefix<R>(table: TableSchema<R, string>, prefix: string): R[] {
    const deleted = this.txn.deletePrefix(table, prefix);
    if (isKvTable(table)) {
      for (const row of deleted as KvEntry[]) {
        if (isPrimitiveRow(row.key)) this.changes.push({ rowKey: row.key, value: null });
      }
    }
    return deleted;
  }
}

function isKvTable<R>(table: TableSchema<R, string>): boolean {
  return (table as unknown) === kvsTable;
}
