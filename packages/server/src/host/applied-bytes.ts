import { assert } from '@conclave/raft';

/**
 * Running totals of the bytes of a group's applied entries, by index, from the log's
 * compaction point on. The snapshot policy asks two questions of them, each in O(1) or
 * O(log n) whatever the size of the log: how many bytes were applied since the last snapshot
 * (the byte threshold), and how far to compact so that at most N bytes trail a snapshot.
 *
 * Totals are absolute (bytes since this process started tracking), so dropping the oldest
 * indexes never rewrites the others. A double holds integers exactly up to 2^53 bytes (8 PiB).
 */
export class AppliedBytes {
  /** The index whose total is `#baseTotal`: entries at or below it are not tracked. */
  #baseIndex: number;
  #baseTotal = 0;
  /** totals[#head + i] is the total through index #baseIndex + 1 + i. */
  #totals: number[] = [];
  #head = 0;

  constructor(options: { baseIndex: number }) {
    this.#baseIndex = options.baseIndex;
  }

  /** The last index tracked (the base when nothing was added since). */
  get lastIndex(): number {
    return this.#baseIndex + this.#totals.length - this.#head;
  }

  /** The first index whose size is known: anything below it is outside the window. */
  get baseIndex(): number {
    return this.#baseIndex;
  }

  /** Start again after `index` (a snapshot was installed: the log restarts empty after it). */
  reset(index: number): void {
    this.#baseIndex = index;
    this.#baseTotal = 0;
    this.#totals = [];
    this.#head = 0;
  }

  /** Record the next applied entry's size; indexes must follow on exactly. */
  add(options: { index: number; bytes: number }): void {
    assert(
      options.index === this.lastIndex + 1,
      () => `applied bytes: expected index ${this.lastIndex + 1}, got ${options.index}`,
    );
    this.#totals.push(this.#totalAt(this.lastIndex) + options.bytes);
  }

  /** Bytes of the entries in (after, through]; both must lie in [baseIndex, lastIndex]. */
  bytesBetween(options: { after: number; through: number }): number {
    return this.#totalAt(options.through) - this.#totalAt(options.after);
  }

  /**
   * The lowest index c in [baseIndex, through] such that the entries in (c, through] take at
   * most `bytesMax`: compacting through c keeps the newest entries that fit.
   */
  keepWithin(options: { through: number; bytesMax: number }): number {
    const { through, bytesMax } = options;
    const end = this.#totalAt(through);
    // Totals never decrease, so the indexes that fit form a suffix: binary search its start.
    let lo = this.#baseIndex;
    let hi = through;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (end - this.#totalAt(mid) <= bytesMax) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Forget indexes at or below `index` (the log was compacted through it). */
  dropThrough(index: number): void {
    if (index <= this.#baseIndex) return;
    const through = Math.min(index, this.lastIndex);
    this.#baseTotal = this.#totalAt(through);
    this.#head += through - this.#baseIndex;
    this.#baseIndex = through;
    // Reclaim the dropped prefix once it is the larger part, so the array stays within twice
    // the live window and each total is copied O(1) times on average.
    if (this.#head > this.#totals.length / 2) {
      this.#totals = this.#totals.slice(this.#head);
      this.#head = 0;
    }
  }

  #totalAt(index: number): number {
    if (index === this.#baseIndex) return this.#baseTotal;
    const total =
      index > this.#baseIndex ? this.#totals[this.#head + index - this.#baseIndex - 1] : undefined;
    assert(
      total !== undefined,
      () => `applied bytes: index ${index} outside [${this.#baseIndex}, ${this.lastIndex}]`,
    );
    return total;
  }
}
