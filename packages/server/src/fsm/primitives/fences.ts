import { assert } from '@conclave/raft';
import { Packr } from 'msgpackr';
import type { StoreReader } from '../../state/index.js';
import type { FsmTxn } from '../quota.js';
import { kvsTable } from '../tables.js';
import type { KvEntry } from '../types.js';

/**
 * Fences and election terms. A fence must grow every time its lock changes hands, and no
 * two locks may ever share one, so that a fence sent to the wrong lock is refused. A Raft
 * index alone is neither: groups count their indexes apart, and one entry (a session's
 * end) can hand over several locks at once. So each group counts its fences in one row,
 * never below the entry's index (a user restore may bring an older count back; the index
 * never goes back, and a restore keeps the count when it ran past the index), and a fence
 * is that count × fenceGroupStride + the group's id.
 */
export const fenceGroupStride = 1024;

/** The row that holds the group's fence count: reserved, but not a primitive, hold or results row. */
export const fencesRowKey = '\u0000fences';
const packr = new Packr({ useRecords: false, moreTypes: false });

/** A function that hands out this group's next fence, storing the count in `txn`. */
export function fenceSource(options: { txn: FsmTxn; groupId: number }): () => number {
  const { txn, groupId } = options;
  assert(
    Number.isInteger(groupId) && groupId >= 0 && groupId < fenceGroupStride,
    () => `group ${groupId} within the fence stride`,
  );
  return () => {
    const row = txn.first(kvsTable, 'id', fencesRowKey);
    const last: unknown = row === null ? 0 : packr.unpack(row.value);
    assert(Number.isSafeInteger(last), 'the fence count is an integer');
    const count = Math.max((last as number) + 1, txn.index);
    const fence = count * fenceGroupStride + groupId;
    assert(Number.isSafeInteger(fence), () => `fence count ${count} overflows`);
    txn.insert(kvsTable, {
      key: fencesRowKey,
      value: packr.pack(count),
      flags: 0,
      createIndex: row?.createIndex ?? txn.index,
      modifyIndex: txn.index,
      lockIndex: 0,
      session: null,
    });
    return fence;
  };
}

/** The count of the last fence the group gave, or 0 if it never gave one. */
export function fenceCountIn(reader: Pick<StoreReader, 'first'>): number {
  const row = reader.first(kvsTable, 'id', fencesRowKey);
  return row === null ? 0 : (packr.unpack(row.value) as number);
}

/**
 * A user restore's rows, committed at `index`, with the group's fence count (`count`
 * before the restore) kept when it ran past the index and the archive's is lower: one entry
 * handing over several locks counts past its index, so the index alone would not keep the
 * fences given before the restore from being given again after it.
 */
export function keepFenceCount(options: { kvs: KvEntry[]; count: number; index: number }): KvEntry[] {
  const { kvs, count, index } = options;
  if (count <= index) return kvs;
  const at = kvs.findIndex((row) => row.key === fencesRowKey);
  const stored = kvs[at];
  if (stored !== undefined && (packr.unpack(stored.value) as number) >= count) return kvs;
  const row: KvEntry = {
    key: fencesRowKey,
    value: packr.pack(count),
    flags: 0,
    createIndex: stored?.createIndex ?? index,
    modifyIndex: index,
    lockIndex: 0,
    session: null,
  };
  return stored === undefined ? [...kvs, row] : kvs.map((other, i) => (i === at ? row : other));
}
