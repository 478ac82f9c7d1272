import type { Entry, HardState, NodeId, Snapshot } from '@conclave/raft';
import {
  DiskError,
  DurableStorage,
  SimDisk as FaultyDisk,
  GroupLog,
  SnapshotCorruptionError,
  SnapshotUnavailableError,
  WalCorruptionError,
  WalFailedError,
} from '@conclave/storage';
import {
  type CrashOutcome,
  type DiskOptions,
  drawFsyncLatencyMs,
  type NodeStore,
  type PendingWrite,
  validateDiskOptions,
  type WriteRecord,
  writeRecords,
} from './disk.js';
import { isBlankLog } from './log-view.js';
import type { Rng } from './rng.js';

/**
 * The `wal` storage mode: a node's durable state is the server's real WAL and snapshot store
 * (DurableStorage, Raft group 0) over the storage package's faulty in-memory disk.
 *
 * Timing: a Ready's write is made (one WAL write plus one fdatasync, through
 * DurableStorage.persist) when its fsync event fires, not when it begins. The node blocks
 * from begin to that event either way, so SimNode's state machine stays the same in both
 * modes, and the core only ever reads (through the GroupLog) what persist made durable. A
 * crash between begin and the fsync event therefore loses the whole write (its bytes never
 * left the page cache); a torn write is produced by a power failure inside the fdatasync
 * itself (`completeWrite(id, { tear: true })` arms `scheduleCrash`), after which the disk
 * keeps a random, possibly torn, prefix of the unsynced bytes and recovery cuts the tail.
 *
 * Any error from persist or saveSnapshot (DiskSyncError, SimulatedCrashError,
 * WalFailedError) is thrown to the node, which stops: it is never retried. Recovery runs at
 * every start, so damage found there (bit rot) makes the node refuse to start.
 */

const nodeDir = '/node';
const groupId = 0;

/** A start-up failure that means "do not trust this disk": the node must stay down. */
export function isStorageRefusal(error: unknown): error is Error {
  return (
    error instanceof WalCorruptionError ||
    error instanceof SnapshotCorruptionError ||
    error instanceof SnapshotUnavailableError
  );
}

/** An I/O failure while running: the node must stop and recover from disk on restart. */
export function isStorageFailure(error: unknown): error is Error {
  return error instanceof DiskError || error instanceof WalFailedError;
}

export class WalDisk implements NodeStore {
  readonly kind = 'wal';
  readonly #options: DiskOptions;
  /** fsync latencies, as the memory model draws them. */
  readonly #latencyRng: Rng;
  /** The faulty disk's own random source (torn prefixes). */
  readonly #diskRng: Rng;
  #disk: FaultyDisk;
  /** Open while the node runs; null while it is down. */
  #durable: DurableStorage | null;
  /** What the core reads: the live group log, or the one recovered after the last crash. */
  #view: GroupLog;
  #pending: { write: PendingWrite; batch: WriteParts } | null = null;
  #nextWriteId = 1;

  constructor(options: { voters: readonly NodeId[]; disk: DiskOptions; latencyRng: Rng; diskRng: Rng }) {
    validateDiskOptions(options.disk);
    this.#options = options.disk;
    this.#latencyRng = options.latencyRng;
    this.#diskRng = options.diskRng;
    this.#disk = new FaultyDisk({ random: this.#diskRng });
    const durable = DurableStorage.open({ disk: this.#disk, dir: nodeDir });
    // The bootstrap: a snapshot at index 0 carrying the first membership.
    durable.persist([
      {
        groupId,
        entries: [],
        hardState: null,
        snapshot: {
          metadata: { index: 0, term: 0, confState: { voters: [...options.voters], learners: [] } },
          data: new Uint8Array(0),
        },
      },
    ]);
    this.#durable = durable;
    this.#view = durable.group(groupId);
  }

  /** The simulated device, for fault injection (failSync, corrupt) and inspection. */
  get simDisk(): FaultyDisk {
    return this.#disk;
  }

  get dir(): string {
    return nodeDir;
  }

  get storage(): GroupLog {
    return this.#view;
  }

  get empty(): boolean {
    return isBlankLog(this.#view);
  }

  get pending(): PendingWrite | null {
    return this.#pending?.write ?? null;
  }

  open(): void {
    if (this.#durable !== null) return;
    const durable = DurableStorage.open({ disk: this.#disk, dir: nodeDir });
    this.#durable = durable;
    this.#view = durable.group(groupId);
  }

  /** A brand-new, empty device: no bootstrap, so the node boots with no membership. */
  wipe(): void {
    this.#closeQuietly();
    this.#pending = null;
    this.#disk = new FaultyDisk({ random: this.#diskRng });
    this.#view = new GroupLog({ groupId });
  }

  beginWrite(options: {
    snapshot: Snapshot | null;
    entries: readonly Entry[];
    hardState: HardState | null;
    nowMs: number;
  }): PendingWrite {
    if (this.#pending !== null) throw new Error(`WalDisk: write ${this.#pending.write.id} still unsynced`);
    const records = writeRecords(options);
    const latencyMs = drawFsyncLatencyMs(this.#latencyRng, this.#options);
    const write: PendingWrite = { id: this.#nextWriteId++, records, syncAtMs: options.nowMs + latencyMs };
    this.#pending = {
      write,
      batch: { snapshot: options.snapshot, entries: options.entries, hardState: options.hardState },
    };
    return write;
  }

  completeWrite(id: number, options: { tear?: boolean } = {}): readonly WriteRecord[] {
    const pending = this.#pending;
    if (pending === null || pending.write.id !== id) {
      throw new Error(`WalDisk: completing write ${id}, but pending is ${pending?.write.id ?? 'none'}`);
    }
    const durable = this.#live();
    if (options.tear === true) this.#disk.scheduleCrash({ afterSyncs: 0 });
    // On an error the write stays pending: crash() reports what of it survived.
    durable.persist([{ groupId, ...pending.batch }]);
    this.#pending = null;
    return pending.write.records;
  }

  /**
   * Power loss: the device keeps a random (possibly torn) prefix of its unsynced bytes;
   * recovery runs at once to learn which records of the write in flight survived.
   */
  crash(): CrashOutcome {
    const pending = this.#pending;
    this.#pending = null;
    this.#closeQuietly();
    this.#disk.crash({ tornWriteRate: this.#options.tornWriteRate, bitFlipRate: 0 });
    const recovered = DurableStorage.open({ disk: this.#disk, dir: nodeDir });
    this.#view = recovered.group(groupId);
    recovered.close();
    if (pending === null) return { kept: [], lostCount: 0 };
    const records = pending.write.records;
    let keptCount = 0;
    while (keptCount < records.length) {
      const record = records[keptCount];
      if (record === undefined || !this.#holds(record)) break;
      keptCount++;
    }
    return { kept: records.slice(0, keptCount), lostCount: records.length - keptCount };
  }

  createSnapshot(options: { snapshot: Snapshot; compactIndex: number }): void {
    if (this.#pending !== null) throw new Error('WalDisk: snapshot while a write is unsynced');
    this.#live().saveSnapshot({
      groupId,
      snapshot: options.snapshot,
      compactThroughIndex: Math.max(0, options.compactIndex),
    });
  }

  /** Bytes on the device: every WAL segment, the WAL metadata and every snapshot file. */
  persistedBytes(): number {
    let bytes = 0;
    for (const sub of ['wal', 'snap']) {
      const dir = `${nodeDir}/${sub}`;
      if (!this.#disk.exists(dir)) continue;
      for (const name of this.#disk.readdir(dir)) {
        const path = `${dir}/${name}`;
        try {
          bytes += this.#disk.fileBytes(path).length;
        } catch (error) {
          // A subdirectory (quarantine) is not a file.
          if (!(error instanceof DiskError)) throw error;
        }
      }
    }
    return bytes;
  }

  /**
   * Bit rot while the node is down: flip a byte of a WAL frame that is not the log's last
   * (so recovery cannot take it for a torn tail) or of a snapshot file. Returns what was hit,
   * or null when there is nothing such to damage.
   */
  corruptAtRest(rng: Rng): string | null {
    if (this.#durable !== null) throw new Error('WalDisk: corrupt a running node');
    const targets: { path: string; start: number; end: number }[] = [];
    const walDir = `${nodeDir}/wal`;
    const segments = this.#disk.exists(walDir)
      ? this.#disk
          .readdir(walDir)
          .filter((name) => /^\d{20}\.wal$/.test(name))
          .sort()
      : [];
    segments.forEach((name, k) => {
      const path = `${walDir}/${name}`;
      const frames = frameSpans(this.#disk.fileBytes(path));
      const usable = k === segments.length - 1 ? frames.slice(0, -1) : frames;
      for (const span of usable) targets.push({ path, ...span });
    });
    const snapDir = `${nodeDir}/snap`;
    if (this.#disk.exists(snapDir)) {
      for (const name of this.#disk.readdir(snapDir).sort()) {
        const path = `${snapDir}/${name}`;
        let length: number;
        try {
          length = this.#disk.fileBytes(path).length;
        } catch (error) {
          if (!(error instanceof DiskError)) throw error;
          continue;
        }
        if (length > 0) targets.push({ path, start: 0, end: length });
      }
    }
    if (targets.length === 0) return null;
    const target = rng.pick(targets);
    const offset = rng.intBetween({ min: target.start, max: target.end - 1 });
    this.#disk.corrupt({ path: target.path, offset, xor: 1 << rng.nextInt(8) });
    return `${target.path}@${offset}`;
  }

  #live(): DurableStorage {
    const durable = this.#durable;
    if (durable === null) throw new Error('WalDisk: storage is not open (the node is down)');
    return durable;
  }

  #closeQuietly(): void {
    const durable = this.#durable;
    this.#durable = null;
    if (durable === null) return;
    try {
      durable.close();
    } catch (error) {
      // Closing after a failed or halted disk: the handles are dead anyway.
      if (!isStorageFailure(error)) throw error;
    }
  }

  /** Whether the recovered log holds `record` (after a crash, for the kept prefix). */
  #holds(record: WriteRecord): boolean {
    const log = this.#view;
    switch (record.kind) {
      case 'snapshot': {
        const meta = log.snapshotMetadata();
        return meta.index === record.snapshot.metadata.index && meta.term === record.snapshot.metadata.term;
      }
      case 'entry': {
        const { index, term } = record.entry;
        return index >= log.firstIndex() && index <= log.lastIndex() && log.term(index) === term;
      }
      case 'hardState': {
        const hs = log.hardState();
        const want = record.hardState;
        return hs.term === want.term && hs.vote === want.vote && hs.commit === want.commit;
      }
    }
  }
}

interface WriteParts {
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/** Segment layout (docs/storage.md): a 32-byte header, then frames of a 24-byte header and a payload. */
const segmentHeaderBytes = 32;
const frameHeaderBytes = 24;

function frameSpans(bytes: Uint8Array): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = segmentHeaderBytes;
  while (offset + frameHeaderBytes <= bytes.length) {
    const payloadBytes = view.getUint32(offset + 4, true);
    const end = offset + frameHeaderBytes + payloadBytes;
    if (end > bytes.length) break;
    spans.push({ start: offset, end });
    offset = end;
  }
  return spans;
}
