import {
  assert,
  type ConfState,
  type Entry,
  entrySizeBytes,
  type HardState,
  type LogStorage,
  type Snapshot,
  type SnapshotMetadata,
} from '@conclave/raft';

const emptySnapshotMetadata: SnapshotMetadata = {
  index: 0,
  term: 0,
  confState: { voters: [], learners: [] },
};
const emptyData = new Uint8Array(0);

/**
 * Reads the bytes of the snapshot `metadata` describes back from disk, verified, or throws the
 * storage's typed error (DurableStorage gives one that reads its snapshot store).
 */
export type SnapshotLoader = (metadata: SnapshotMetadata) => Uint8Array;

/**
 * One Raft group's durable state as the WAL holds it in memory: the LogStorage the core
 * reads. Same semantics as the core's MemoryStorage (firstIndex = compaction point + 1,
 * `term` answers for the compaction point, `snapshot()` is the latest snapshot, which may
 * lie above the compaction point when entries are kept for slow followers).
 *
 * Only the WAL mutates it, and only after the write that carries the change is durable,
 * so what the core reads here is always on disk.
 *
 * With a snapshot loader, the snapshot's bytes are not kept: a group's snapshot can be
 * hundreds of MiB and is needed only when a leader sends it to a lagging follower (rare) or
 * the state machine restores from it at start. The file on disk holds the same bytes.
 */
export class GroupLog implements LogStorage {
  readonly groupId: number;
  #hardState: HardState = { term: 0, vote: null, commit: 0 };
  #snapshot: SnapshotMetadata = emptySnapshotMetadata;
  /** Null until the snapshot store hands over the bytes of `#snapshot` (index 0 needs none). */
  #snapshotData: Uint8Array | null = emptyData;
  #loadSnapshotData: SnapshotLoader | null = null;
  /** The compaction point: entries at or below it are gone; `#offsetTerm` is its term. */
  #offset = 0;
  #offsetTerm = 0;
  /** entries[i] has index #offset + 1 + i. */
  #entries: Entry[] = [];

  constructor(options: { groupId: number }) {
    this.groupId = options.groupId;
  }

  // ---- LogStorage ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.confState };
  }

  entries(options: { lo: number; hi: number; bytesMax: number }): Entry[] {
    const { lo, hi } = options;
    assert(
      lo >= this.firstIndex(),
      () => `group ${this.groupId}: entries(${lo}) below firstIndex ${this.firstIndex()}`,
    );
    assert(
      hi <= this.lastIndex() + 1,
      () => `group ${this.groupId}: entries(.., ${hi}) past lastIndex ${this.lastIndex()}`,
    );
    assert(lo <= hi, () => `group ${this.groupId}: entries: lo ${lo} > hi ${hi}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.#entries[i - this.#offset - 1];
      assert(entry !== undefined, () => `group ${this.groupId}: no entry at ${i}`);
      const size = entrySizeBytes(entry);
      // Always at least one entry, so a single large entry still makes progress.
      if (out.length > 0 && bytes + size > options.bytesMax) break;
      out.push(entry);
      bytes += size;
    }
    return out;
  }

  term(index: number): number | null {
    if (index < this.#offset) return null;
    if (index === this.#offset) return this.#offsetTerm;
    const entry = this.#entries[index - this.#offset - 1];
    assert(
      entry !== undefined,
      () => `group ${this.groupId}: term(${index}) past lastIndex ${this.lastIndex()}`,
    );
    return entry.term;
  }

  firstIndex(): number {
    return this.#offset + 1;
  }

  lastIndex(): number {
    return this.#offset + this.#entries.length;
  }

  /**
   * The latest snapshot with its bytes. With a loader, bytes still held (attached at recovery
   * for the state machine's restore) are handed out once and dropped; otherwise they are read
   * from disk on each call, and the caller (the leader's Progress) drops them when done.
   */
  snapshot(): Snapshot {
    const metadata = this.#snapshot;
    const held = this.#snapshotData;
    if (held !== null) {
      this.releaseSnapshotData();
      return { metadata, data: held };
    }
    const load = this.#loadSnapshotData;
    assert(
      load !== null,
      () => `group ${this.groupId}: snapshot ${metadata.index} has no data attached and no loader`,
    );
    return { metadata, data: load(metadata) };
  }

  // ---- read-only views ----

  hardState(): HardState {
    return this.#hardState;
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.#snapshot;
  }

  /** Whether the snapshot's bytes are held in memory (rather than left on disk). */
  hasSnapshotData(): boolean {
    return this.#snapshotData !== null;
  }

  /** The compaction point and its term. */
  compactedThrough(): { index: number; term: number } {
    return { index: this.#offset, term: this.#offsetTerm };
  }

  /** Every retained entry, oldest first (a copy of the array, sharing the entries). */
  allEntries(): Entry[] {
    return this.#entries.slice();
  }

  // ---- mutations: the WAL's, after the change is durable ----

  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  /** Append entries that continue the log exactly. */
  appendContiguous(entries: readonly Entry[]): void {
    let expected = this.lastIndex() + 1;
    for (const entry of entries) {
      assert(
        entry.index === expected,
        () => `group ${this.groupId}: append expected index ${expected}, got ${entry.index}`,
      );
      this.#entries.push(entry);
      expected++;
    }
  }

  /** Drop entries at and after `fromIndex` (which must lie above the compaction point). */
  truncateFrom(fromIndex: number): void {
    assert(
      fromIndex > this.#offset,
      () => `group ${this.groupId}: truncateFrom(${fromIndex}) at or below ${this.#offset}`,
    );
    if (fromIndex <= this.lastIndex()) this.#entries.length = fromIndex - this.#offset - 1;
  }

  /** Drop entries up to and including `index`, which must be in the log. */
  compactThrough(index: number): void {
    if (index <= this.#offset) return;
    const term = this.term(index);
    assert(term !== null, 'compaction point has no term');
    this.#entries = this.#entries.slice(index - this.#offset);
    this.#offset = index;
    this.#offsetTerm = term;
  }

  /**
   * The log restarts empty after `metadata` (an installed snapshot). The compaction point
   * and the snapshot only move forward: an older marker replayed over a newer checkpoint
   * still empties the log but leaves them be.
   */
  resetTo(metadata: SnapshotMetadata): void {
    this.#entries = [];
    if (metadata.index >= this.#offset) {
      this.#offset = metadata.index;
      this.#offsetTerm = metadata.term;
    }
    this.noteSnapshot(metadata);
  }

  /** Record a snapshot's metadata if it is newer than the one held; its data is attached later. */
  noteSnapshot(metadata: SnapshotMetadata): void {
    if (metadata.index < this.#snapshot.index) return;
    // Same index means the same snapshot (Raft: same index and term, same state), so bytes
    // already attached stay; index 0 is the bootstrap marker, whose confState may change.
    if (metadata.index > this.#snapshot.index) this.#snapshotData = null;
    this.#snapshot = metadata;
  }

  /** From now on, read the snapshot's bytes from disk when asked instead of keeping them. */
  setSnapshotLoader(loader: SnapshotLoader): void {
    this.#loadSnapshotData = loader;
  }

  /**
   * Drop the snapshot's bytes once they are durable on disk (the caller's promise), when a
   * loader can read them back. Index 0 (bootstrap) has no file: its empty bytes stay.
   */
  releaseSnapshotData(): void {
    if (this.#loadSnapshotData !== null && this.#snapshot.index > 0) this.#snapshotData = null;
  }

  /** Hand over the bytes of the current snapshot. */
  attachSnapshot(snapshot: Snapshot): void {
    assert(
      snapshot.metadata.index === this.#snapshot.index && snapshot.metadata.term === this.#snapshot.term,
      () =>
        `group ${this.groupId}: attaching snapshot ${snapshot.metadata.index} but the log is at ${this.#snapshot.index}`,
    );
    this.#snapshotData = snapshot.data;
  }

  /** Start from a checkpoint (WAL metadata) or a fallback snapshot. */
  restore(options: {
    hardState: HardState;
    snapshot: SnapshotMetadata;
    compactedThrough: { index: number; term: number };
  }): void {
    assert(options.compactedThrough.index <= options.snapshot.index, 'compaction point above the snapshot');
    this.#hardState = options.hardState;
    this.#snapshot = options.snapshot;
    this.#snapshotData = options.snapshot.index === 0 ? emptyData : null;
    this.#offset = options.compactedThrough.index;
    this.#offsetTerm = options.compactedThrough.term;
    this.#entries = [];
  }
}
