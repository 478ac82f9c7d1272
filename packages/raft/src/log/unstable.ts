import { assert } from '../errors.js';
import type { Entry, Snapshot } from '../types.js';

/**
 * The tail of the log not yet known to be durable: entries (and possibly an incoming
 * snapshot) the next Ready hands to the caller to persist. `offset` is the index of
 * entries[0]; everything below it is in storage.
 */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  lastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== null) return this.snapshot.metadata.index;
    return null;
  }

  term(index: number): number | null {
    if (index < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === index)
        return this.snapshot.metadata.term;
      return null;
    }
    const entry = this.entries[index - this.offset];
    return entry === undefined ? null : entry.term;
  }

  /** The caller made entries up to (index, term) durable: drop them, unless they were replaced since. */
  stableTo(options: { index: number; term: number }): void {
    const { index, term } = options;
    if (index < this.offset || this.term(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  /** Append entries, replacing whatever suffix they conflict with. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // The new entries replace the whole unstable tail (and some of storage).
      this.offset = after;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const entry of entries) this.entries.push(entry);
    }
    const last = this.entries[this.entries.length - 1];
    assert(
      last !== undefined && last.index === this.offset + this.entries.length - 1,
      'unstable entries are not contiguous',
    );
  }

  /** Entries in [lo, hi), which must lie inside the unstable tail. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, () => {
      return `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`;
    });
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
