import {
  type Entry,
  entrySizeBytes,
  type HardState,
  type LogStorage,
  MemoryStorage,
  type Snapshot,
} from '@conclave/raft';
import { isBlankLog } from './log-view.js';
import type { Rng } from './rng.js';

/**
 * The durable state of one simulated node. `storage` is what survives a crash; a Ready's
 * write first sits in `pending`, unsynced, and reaches `storage` only when its fsync
 * completes. A crash before that loses the write, or (a torn write) keeps a prefix of its
 * records: records are ordered snapshot, entries (one record each), hard state, so a torn
 * write never keeps a hard state whose entries were lost.
 */

export interface DiskOptions {
  /** An fsync takes a uniform time in [min, max]. */
  readonly fsyncLatencyMinMs: number;
  readonly fsyncLatencyMaxMs: number;
  /** Probability that an fsync is slow (a stalled device), taking up to `slowFsyncMaxMs`. */
  readonly slowFsyncRate: number;
  readonly slowFsyncMaxMs: number;
  /** Probability that a crash during an unsynced write keeps a random prefix of it. */
  readonly tornWriteRate: number;
}

export const defaultDiskOptions: DiskOptions = {
  fsyncLatencyMinMs: 1,
  fsyncLatencyMaxMs: 4,
  slowFsyncRate: 0.01,
  slowFsyncMaxMs: 15,
  tornWriteRate: 0.5,
};

/** Bytes charged for the hard state record (term, vote, commit). */
export const hardStateSizeBytes = 32;

export type WriteRecord =
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot }
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState };

export interface PendingWrite {
  readonly id: number;
  readonly records: readonly WriteRecord[];
  readonly syncAtMs: number;
}

export interface CrashOutcome {
  /** The records of the unsynced write that reached storage anyway (a prefix). */
  readonly kept: readonly WriteRecord[];
  /** How many records of the unsynced write were lost. */
  readonly lostCount: number;
}

/**
 * A node's durable storage as SimNode drives it: the in-memory model below (`memory`), or the
 * real WAL and snapshot store over a faulty simulated disk (`wal`, see wal-disk.ts).
 */
export interface NodeStore {
  readonly kind: 'memory' | 'wal';
  /** What survives a crash: the log the core reads. */
  readonly storage: LogStorage;
  readonly empty: boolean;
  readonly pending: PendingWrite | null;
  /** Load the durable state for a new life; throws when the disk must not be trusted. */
  open(): void;
  wipe(): void;
  beginWrite(options: {
    snapshot: Snapshot | null;
    entries: readonly Entry[];
    hardState: HardState | null;
    nowMs: number;
  }): PendingWrite;
  /** `tear`: power fails inside this write's fsync (wal only). Throws when the write fails. */
  completeWrite(id: number, options?: { tear?: boolean }): readonly WriteRecord[];
  crash(): CrashOutcome;
  createSnapshot(options: { snapshot: Snapshot; compactIndex: number }): void;
  persistedBytes(): number;
}

/** The records of one Ready's write, in the order a torn write keeps a prefix of them. */
export function writeRecords(options: {
  snapshot: Snapshot | null;
  entries: readonly Entry[];
  hardState: HardState | null;
}): WriteRecord[] {
  const records: WriteRecord[] = [];
  if (options.snapshot !== null) records.push({ kind: 'snapshot', snapshot: options.snapshot });
  for (const entry of options.entries) records.push({ kind: 'entry', entry });
  if (options.hardState !== null) records.push({ kind: 'hardState', hardState: options.hardState });
  return records;
}

/** How long one fsync takes, drawn from `rng`. */
export function drawFsyncLatencyMs(rng: Rng, o: DiskOptions): number {
  let latencyMs = rng.intBetween({ min: o.fsyncLatencyMinMs, max: o.fsyncLatencyMaxMs });
  if (rng.chance(o.slowFsyncRate)) {
    latencyMs = Math.max(latencyMs, rng.intBetween({ min: o.fsyncLatencyMaxMs, max: o.slowFsyncMaxMs }));
  }
  return latencyMs;
}

export function validateDiskOptions(d: DiskOptions): void {
  if (d.fsyncLatencyMinMs < 0 || d.fsyncLatencyMaxMs < d.fsyncLatencyMinMs) {
    throw new RangeError('SimDisk: need 0 <= fsyncLatencyMinMs <= fsyncLatencyMaxMs');
  }
  for (const [name, rate] of [
    ['slowFsyncRate', d.slowFsyncRate],
    ['tornWriteRate', d.tornWriteRate],
  ] as const) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`SimDisk: ${name} must be in [0, 1]`);
  }
}

export class SimDisk implements NodeStore {
  readonly kind = 'memory';
  #storage: MemoryStorage;
  readonly #options: DiskOptions;
  readonly #rng: Rng;
  #pending: PendingWrite | null = null;
  #nextWriteId = 1;

  constructor(options: { storage: MemoryStorage; disk: DiskOptions; rng: Rng }) {
    const d = options.disk;
    validateDiskOptions(d);
    this.#storage = options.storage;
    this.#options = d;
    this.#rng = options.rng;
  }

  /** What survives a crash. Replaced (not mutated) only by wipe(). */
  get storage(): MemoryStorage {
    return this.#storage;
  }

  /** Whether the disk holds nothing: no entry, no snapshot, no membership, term 0. */
  get empty(): boolean {
    return isBlankLog(this.#storage);
  }

  /**
   * Erase everything: the unsynced write is dropped and the storage replaced by an empty
   * one (no snapshot, no membership, term 0, no vote), as for a brand-new server.
   */
  wipe(): void {
    this.#pending = null;
    this.#storage = new MemoryStorage();
  }

  get pending(): PendingWrite | null {
    return this.#pending;
  }

  /** Start one write; at most one is outstanding, as the node blocks until it syncs. */
  beginWrite(options: {
    snapshot: Snapshot | null;
    entries: readonly Entry[];
    hardState: HardState | null;
    nowMs: number;
  }): PendingWrite {
    if (this.#pending !== null) throw new Error(`SimDisk: write ${this.#pending.id} still unsynced`);
    const records = writeRecords(options);
    const latencyMs = drawFsyncLatencyMs(this.#rng, this.#options);
    const write: PendingWrite = { id: this.#nextWriteId++, records, syncAtMs: options.nowMs + latencyMs };
    this.#pending = write;
    return write;
  }

  /** Nothing to load: the model's storage is the durable state itself. */
  open(): void {}

  /** The fsync of write `id` completed: its records become durable. */
  completeWrite(id: number): readonly WriteRecord[] {
    const write = this.#pending;
    if (write === null || write.id !== id) {
      throw new Error(`SimDisk: completing write ${id}, but pending is ${write?.id ?? 'none'}`);
    }
    this.#pending = null;
    for (const record of write.records) this.#applyRecord(record);
    return write.records;
  }

  /** Power loss: the unsynced write is lost, or torn (a random prefix of it survives). */
  crash(): CrashOutcome {
    const write = this.#pending;
    this.#pending = null;
    if (write === null) return { kept: [], lostCount: 0 };
    const keptCount = this.#rng.chance(this.#options.tornWriteRate)
      ? this.#rng.intBetween({ min: 0, max: write.records.length })
      : 0;
    const kept = write.records.slice(0, keptCount);
    for (const record of kept) this.#applyRecord(record);
    return { kept, lostCount: write.records.length - keptCount };
  }

  /** The application took a snapshot: recorded at once (written aside, then renamed into place). */
  createSnapshot(options: { snapshot: Snapshot; compactIndex: number }): void {
    if (this.#pending !== null) throw new Error('SimDisk: snapshot while a write is unsynced');
    this.storage.createSnapshot(options.snapshot);
    if (options.compactIndex >= this.storage.firstIndex()) this.storage.compact(options.compactIndex);
  }

  /** Durable bytes: the snapshot, the retained entries and the hard state. */
  persistedBytes(): number {
    const s = this.storage;
    let bytes = s.snapshot().data.byteLength + hardStateSizeBytes;
    const lo = s.firstIndex();
    const hi = s.lastIndex() + 1;
    if (hi > lo) {
      for (const entry of s.entries({ lo, hi, bytesMax: Number.MAX_SAFE_INTEGER }))
        bytes += entrySizeBytes(entry);
    }
    return bytes;
  }

  #applyRecord(record: WriteRecord): void {
    switch (record.kind) {
      case 'snapshot':
        this.storage.applySnapshot(record.snapshot);
        return;
      case 'entry':
        this.storage.append([record.entry]);
        return;
      case 'hardState':
        this.storage.setHardState(record.hardState);
        return;
    }
  }
}
