import { assert } from '../errors.js';
import { limitEntries } from '../size.js';
import type { LogStorage } from '../storage.js';
import type { Entry, Snapshot } from '../types.js';
import { Unstable } from './unstable.js';

/**
 * The node's view of the replicated log: durable entries in storage, followed by the
 * unstable tail. It also holds the commit index and how far entries have been handed
 * out for apply (`applying`) and applied (`applied`).
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  /** The last index handed out in a Ready for apply. */
  applying: number;
  /** The last index the caller confirmed applied (by calling advance). */
  applied: number;

  constructor(
    readonly storage: LogStorage,
    options: { committed: number; applied: number },
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    assert(first - 1 <= last, 'storage has firstIndex past lastIndex + 1');
    this.committed = Math.max(options.committed, first - 1);
    assert(
      this.committed <= last,
      () => `hard state commit ${options.committed} is past the log's last index ${last}`,
    );
    const applied = Math.max(options.applied, first - 1);
    assert(applied <= this.committed, () => `applied ${applied} is past commit ${this.committed}`);
    this.applying = applied;
    this.applied = applied;
  }

  firstIndex(): number {
    const pending = this.unstable.snapshot;
    return pending !== null ? pending.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== null, 'the last entry has no term');
    return term;
  }

  /**
   * The index of the last entry known to be durable and part of our log. While an
   * incoming snapshot is not yet durable, nothing counts.
   */
  lastStableIndex(): number {
    if (this.unstable.snapshot !== null) return 0;
    return this.unstable.offset - 1;
  }

  /** The term of the entry at `index`, or null if it is compacted or not in the log. */
  term(index: number): number | null {
    if (index > this.lastIndex()) return null;
    const unstableTerm = this.unstable.term(index);
    if (unstableTerm !== null) return unstableTerm;
    if (index >= this.unstable.offset) return null;
    if (index < this.storage.firstIndex() - 1) return null;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft's election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(options: { lastIndex: number; lastTerm: number }): boolean {
    const ourTerm = this.lastTerm();
    return (
      options.lastTerm > ourTerm || (options.lastTerm === ourTerm && options.lastIndex >= this.lastIndex())
    );
  }

  /** A leader appends its own new entries. Returns the new last index. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(
      first.index - 1 >= this.committed,
      () => `append at ${first.index} would overwrite committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * A follower's AppendEntries: if our log holds (index, logTerm), add `entries` (cutting
   * any conflicting suffix), advance commit, and return the index of the last new entry.
   * Returns null when the logs do not match at `index`.
   */
  maybeAppend(options: {
    index: number;
    logTerm: number;
    commit: number;
    entries: readonly Entry[];
  }): number | null {
    const { index, logTerm, commit, entries } = options;
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNewIndex = index + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) {
      assert(conflictIndex > this.committed, () => {
        return `conflict at ${conflictIndex} would truncate committed entries (commit ${this.committed})`;
      });
      const first = entries[0];
      assert(first !== undefined, 'conflict without entries');
      this.append(entries.slice(conflictIndex - first.index));
    }
    this.commitTo(Math.min(commit, lastNewIndex));
    return lastNewIndex;
  }

  /**
   * The index of the first entry that is new or conflicts with ours, or 0 when we hold
   * all of them already (so that a duplicate or stale message never truncates).
   */
  private findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index at or below `index` whose term is at most `term`. Both sides use it
   * to skip a whole divergent term per round trip when logs disagree.
   */
  findConflictByTerm(options: { index: number; term: number }): { index: number; term: number } {
    let index = Math.min(options.index, this.lastIndex());
    for (;;) {
      const term = this.term(index);
      if (term === null) return { index, term: 0 };
      if (term <= options.term) return { index, term };
      index--;
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(
      index <= this.lastIndex(),
      () =>
        `commit ${index} is past the last index ${this.lastIndex()}: this node lost log entries a leader ` +
        'counted on (a wiped or restored data dir?); remove it from the cluster and add it back empty',
    );
    this.committed = index;
  }

  /**
   * Entries from `lo` on, within the byte and count limits; null when `lo` has been
   * compacted, so the caller must fall back to a snapshot.
   */
  entriesFrom(options: { lo: number; bytesMax: number; countMax: number }): Entry[] | null {
    const last = this.lastIndex();
    if (options.lo > last) return [];
    return this.slice({
      lo: options.lo,
      hi: Math.min(last + 1, options.lo + options.countMax),
      bytesMax: options.bytesMax,
    });
  }

  /** Entries in [lo, hi) within `bytesMax` (always at least one), or null if compacted. */
  slice(options: { lo: number; hi: number; bytesMax: number }): Entry[] | null {
    const { lo, hi, bytesMax } = options;
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return null;
    assert(hi <= this.lastIndex() + 1, () => `slice hi ${hi} past last index ${this.lastIndex()}`);
    const boundary = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < boundary) {
      out = this.storage.entries({ lo, hi: Math.min(hi, boundary), bytesMax });
      // Storage stopped early on the byte limit: the unstable part cannot follow.
      if (out.length < Math.min(hi, boundary) - lo) return out;
    }
    if (hi > boundary) {
      const tail = this.unstable.slice(Math.max(lo, boundary), hi);
      out = out.length === 0 ? tail : out.concat(tail);
    }
    return limitEntries(out, { bytesMax, countMax: Number.MAX_SAFE_INTEGER });
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applying;
  }

  /** The next batch of committed entries to apply, within `bytesMax`. */
  nextCommittedEntries(bytesMax: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const entries = this.slice({ lo: this.applying + 1, hi: this.committed + 1, bytesMax });
    assert(entries !== null, () => `committed entries after ${this.applying} were compacted before apply`);
    return entries;
  }

  acceptApplying(index: number): void {
    assert(index <= this.committed, () => `applying ${index} past commit ${this.committed}`);
    assert(index >= this.applying, () => `applying went backwards: ${index} < ${this.applying}`);
    this.applying = index;
  }

  appliedTo(index: number): void {
    assert(index >= this.applied, () => `applied went backwards: ${index} < ${this.applied}`);
    assert(index <= this.applying, () => `applied ${index} past handed-out ${this.applying}`);
    this.applied = index;
  }

  /** Replace the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    const { index } = snapshot.metadata;
    // An empty log may take any snapshot, even the bootstrap one at index 0.
    assert(
      index > this.committed || this.lastIndex() === 0,
      () => `restore to ${index} at or below commit ${this.committed}`,
    );
    this.unstable.restore(snapshot);
    this.committed = index;
    this.applying = index;
  }

  /** The snapshot to send: a pending incoming one, or the one in storage. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }
}
