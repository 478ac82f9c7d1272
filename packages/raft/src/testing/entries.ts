import { type Entry, EntryType } from '../types.js';

/** An entry with `dataBytes` bytes of data (each the low byte of its index). */
export function entry(index: number, term: number, dataBytes = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(dataBytes).fill(index & 0xff) };
}

/** Entries at consecutive indexes from `from`, one per term in `terms`. */
export function entries(from: number, terms: readonly number[], dataBytes = 0): Entry[] {
  return terms.map((term, i) => entry(from + i, term, dataBytes));
}

export function indexes(list: readonly Entry[]): number[] {
  return list.map((e) => e.index);
}
