import { assert } from './errors.js';
import { limitEntries } from './size.js';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata } from './types.js';

/**
 * What the core reads of the durable log. The caller owns the storage and writes to it
 * while handling a Ready; the core only reads, synchronously, so it stays free of I/O.
 * Indexes in (snapshot index, lastIndex] are readable; `term` also answers for the
 * snapshot index itself.
 */
export interface LogStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `bytesMax` bytes but always at least one. */
  entries(options: { lo: number; hi: number; bytesMax: number }): Entry[];
  /** The term of the entry at `index`, or null when it has been compacted away. */
  term(index: number): number | null;
  /** The first index still held as an entry (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot with its data; a storage may read the data from disk, so call it only for the bytes. */
  snapshot(): Snapshot;
  /** The latest snapshot's metadata: cheap, never loads the data. */
  snapshotMetadata(): SnapshotMetadata;
}

const emptyConfState: ConfState = { voters: [], learners: [] };

/**
 * An in-memory LogStorage. The simulator uses it as the durable state of a node; the
 * server keeps one as the cache in front of its write-ahead log.
 */
export class MemoryStorage implements LogStorage {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot;
  /** entries[0] is a sentinel carrying the snapshot's index and term. */
  private log: Entry[];

  constructor(options: { confState?: ConfState } = {}) {
    const metadata: SnapshotMetadata = { index: 0, term: 0, confState: options.confState ?? emptyConfState };
    this.snap = { metadata, data: new Uint8Array(0) };
    this.log = [sentinel(metadata)];
  }

  /** A storage for a brand-new group whose first members are `voters`. */
  static bootstrap(options: { voters: readonly string[]; learners?: readonly string[] }): MemoryStorage {
    return new MemoryStorage({
      confState: { voters: [...options.voters], learners: [...(options.learners ?? [])] },
    });
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  entries(options: { lo: number; hi: number; bytesMax: number }): Entry[] {
    const { lo, hi } = options;
    assert(lo >= this.firstIndex(), () => `entries(${lo}) below firstIndex ${this.firstIndex()}`);
    assert(hi <= this.lastIndex() + 1, () => `entries(.., ${hi}) past lastIndex ${this.lastIndex()}`);
    assert(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    const offset = this.offset();
    return limitEntries(this.log.slice(lo - offset, hi - offset), {
      bytesMax: options.bytesMax,
      countMax: Number.MAX_SAFE_INTEGER,
    });
  }

  term(index: number): number | null {
    const offset = this.offset();
    if (index < offset) return null;
    const entry = this.log[index - offset];
    assert(entry !== undefined, () => `term(${index}) past lastIndex ${this.lastIndex()}`);
    return entry.term;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.log.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.snap.metadata;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /** Replace the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    assert(
      snapshot.metadata.index >= this.snap.metadata.index,
      () => `applySnapshot: index ${snapshot.metadata.index} older than ${this.snap.metadata.index}`,
    );
    this.snap = snapshot;
    this.log = [sentinel(snapshot.metadata)];
  }

  /** Record a snapshot the application took at `metadata.index`, then drop entries up to `compactIndex`. */
  createSnapshot(snapshot: Snapshot): void {
    const { index } = snapshot.metadata;
    assert(
      index <= this.lastIndex(),
      () => `createSnapshot: index ${index} past lastIndex ${this.lastIndex()}`,
    );
    if (index <= this.snap.metadata.index) return;
    assert(this.term(index) === snapshot.metadata.term, () => `createSnapshot: term mismatch at ${index}`);
    this.snap = snapshot;
  }

  /** Drop every entry up to and including `index`, which must be covered by the snapshot. */
  compact(index: number): void {
    const offset = this.offset();
    if (index <= offset) return;
    assert(
      index <= this.snap.metadata.index,
      () => `compact(${index}) beyond snapshot ${this.snap.metadata.index}`,
    );
    const entry = this.log[index - offset];
    assert(entry !== undefined, () => `compact(${index}) past lastIndex`);
    this.log = [
      { term: entry.term, index, type: entry.type, data: new Uint8Array(0) },
      ...this.log.slice(index - offset + 1),
    ];
  }

  /** Append entries, replacing any conflicting suffix. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const offset = this.offset();
    assert(first.index > offset, () => `append: index ${first.index} at or below compacted ${offset}`);
    assert(
      first.index <= this.lastIndex() + 1,
      () => `append: gap before ${first.index}, last ${this.lastIndex()}`,
    );
    this.log.length = first.index - offset;
    for (const entry of entries) this.log.push(entry);
  }

  private offset(): number {
    const head = this.log[0];
    assert(head !== undefined, 'MemoryStorage lost its sentinel');
    return head.index;
  }
}

function sentinel(metadata: SnapshotMetadata): Entry {
  return { term: metadata.term, index: metadata.index, type: 0, data: new Uint8Array(0) };
}
