import { assert } from '@conclave/raft';
import type { FsmResult } from './commands.js';
import { PartsDigest } from './parts-digest.js';
import type { QuotaLimits } from './quota.js';
import type { LegacyRestoreCommand, RestoreCommand } from './restore-wire.js';
import type { StagedRestore } from './snapshot-codec.js';
import { type PartsSummary, SnapshotPartError, SnapshotPartsReader } from './snapshot-parts.js';
import { kvRowBytes, sessionRowBytes } from './snapshot-rows.js';
import type { KvEntry, SessionEntry } from './types.js';

type RestoreResult = Extract<FsmResult, { type: 'restore' }>;

/** A restore in progress as seen from outside: its id, parts taken, and staged rows' estimated bytes. */
export interface StagedRestoreView {
  readonly restoreId: string;
  readonly parts: number;
  readonly rowBytes: number;
}

interface Staging {
  readonly restoreId: string;
  /** Validates and decodes each part as it is applied, keeping the rows, not the bytes. */
  readonly reader: SnapshotPartsReader;
  /** Chained over the parts; its state is 32 bytes, so a Raft snapshot carries it (fsm/parts-digest.ts). */
  readonly digest: PartsDigest;
  /** Estimated bytes of the staged rows (fsm/snapshot-rows.ts), kept as chunks arrive. */
  rowBytes: number;
}

/**
 * A restore in progress in one group: begin starts it, each chunk (one snapshot part) or
 * batch (several consecutive parts) is decoded at once into staged rows, commit checks the
 * whole and hands back the rows for the FSM to swap in. At most one is staged at a time (a new begin drops the old one). A step
 * that is wrong in any way (another restore's id, a seq out of order, a malformed part, a
 * failed commit check) is refused and drops the staging, so nothing changes. These
 * commands may come from a client of the internal endpoint, so they are refused, never
 * asserted on, and every server reaches the same outcome from the same entries.
 */
export class RestoreStaging {
  private staging: Staging | null = null;

  /** The staged rows and parts are each bounded by groupStateBytesMax; the sessions by sessionsMax. */
  constructor(private readonly limits: QuotaLimits) {}

  /** Estimated bytes of the rows staged now (0 without a staging). */
  get stagedBytes(): number {
    return this.staging?.rowBytes ?? 0;
  }

  /** Which restore is staged and how far it got (O(1)); null without a staging. */
  view(): StagedRestoreView | null {
    const s = this.staging;
    return s === null ? null : { restoreId: s.restoreId, parts: s.reader.parts, rowBytes: s.rowBytes };
  }

  /** What a snapshot carries of a restore in progress (rows are immutable, shared). */
  capture(): StagedRestore | null {
    const s = this.staging;
    if (s === null) return null;
    return {
      restoreId: s.restoreId,
      parts: s.reader.parts,
      digest: s.digest.state(),
      progress: s.reader.progress(),
    };
  }

  /** Takes over a snapshot's staging; asserts that its rows are consistent (a bad snapshot must not load). */
  load(staged: StagedRestore | null): void {
    if (staged === null) {
      this.staging = null;
      return;
    }
    let reader: SnapshotPartsReader;
    try {
      reader =
        staged.progress === null
          ? new SnapshotPartsReader({ keepRows: true })
          : SnapshotPartsReader.resume({ progress: staged.progress, parts: staged.parts });
    } catch (error) {
      if (error instanceof SnapshotPartError) assert(false, `FSM snapshot staging: ${error.message}`);
      throw error;
    }
    assert(reader.parts === staged.parts, 'FSM snapshot staging: its part count matches its rows');
    // Counted once here, as a snapshot loads; from then on chunk by chunk.
    const progress = staged.progress;
    const rowBytes =
      progress === null ? 0 : rowsBytes({ kvs: progress.kvs.flat(), sessions: progress.sessions.flat() });
    this.staging = {
      restoreId: staged.restoreId,
      reader,
      digest: PartsDigest.resume(staged.digest),
      rowBytes,
    };
  }

  /** Runs begin, chunk and abort steps; for a commit, returns the verified rows or the refusal. */
  step(command: RestoreCommand | LegacyRestoreCommand): RestoreResult | { readonly commit: PartsSummary } {
    switch (command.type) {
      case 'restore-begin':
        this.staging = {
          restoreId: command.restoreId,
          reader: new SnapshotPartsReader({ keepRows: true }),
          digest: PartsDigest.start(),
          rowBytes: 0,
        };
        return ok();
      case 'restore-legacy':
        // The previous release's format, from before an upgrade: its chunks are not parts
        // and its commit names no digest, so it cannot complete. A begin replaced any staging
        // then, so it drops it now; every server refuses alike, and the user restores again.
        if (command.step === 'begin' || this.staging?.restoreId === command.restoreId) this.staging = null;
        return refused(
          `restore ${command.restoreId}: begun by a previous release in a format this one does not read; run the restore again`,
        );
      case 'restore-chunk':
      case 'restore-batch':
        return this.parts(command);
      case 'restore-commit':
        return this.commit(command);
      case 'restore-abort':
        if (this.staging?.restoreId === command.restoreId) this.staging = null;
        return ok();
    }
  }

  /**
   * A chunk is one part, a batch several: each part in order through the same checks. A
   * refused part refuses the whole entry and drops the staging, so the parts before it in
   * the entry leave nothing behind either.
   */
  private parts(
    command: Extract<RestoreCommand, { type: 'restore-chunk' | 'restore-batch' }>,
  ): RestoreResult {
    const parts = command.type === 'restore-chunk' ? [command.data] : command.parts;
    for (const [i, data] of parts.entries()) {
      const refusal = this.part(command.restoreId, command.seq + i, data);
      if (refusal !== null) return this.refuse(refusal);
    }
    return ok();
  }

  /** Stages one part; null when taken, or why it is refused (the caller drops the staging). */
  private part(restoreId: string, seq: number, data: Uint8Array): string | null {
    const staging = this.staging;
    if (staging === null || staging.restoreId !== restoreId) return `restore ${restoreId} is not staged`;
    if (seq !== staging.reader.parts) {
      return `restore ${restoreId}: chunk ${seq} is out of order (expected ${staging.reader.parts})`;
    }
    const { groupStateBytesMax } = this.limits;
    if (staging.digest.bytes + data.byteLength > groupStateBytesMax) {
      return `restore ${restoreId}: its parts pass the group's state bound (groupStateBytesMax, ${groupStateBytesMax} bytes)`;
    }
    let rows: ReturnType<SnapshotPartsReader['push']>;
    try {
      rows = staging.reader.push(data);
    } catch (error) {
      if (error instanceof SnapshotPartError) return `restore ${restoreId}: ${error.message}`;
      throw error;
    }
    staging.rowBytes += rowsBytes(rows);
    if (staging.rowBytes > groupStateBytesMax) {
      return `restore ${restoreId}: its rows pass the group's state bound (groupStateBytesMax, ${groupStateBytesMax} bytes)`;
    }
    staging.digest.update(data);
    return null;
  }

  private commit(
    command: Extract<RestoreCommand, { type: 'restore-commit' }>,
  ): RestoreResult | { readonly commit: PartsSummary } {
    const { restoreId } = command;
    const staging = this.staging;
    if (staging === null || staging.restoreId !== restoreId)
      return this.refuse(`restore ${restoreId} is not staged`);
    this.staging = null;
    const { reader, digest } = staging;
    if (reader.parts !== command.parts || digest.bytes !== command.bytes) {
      return refused(
        `restore ${restoreId}: ${reader.parts} parts of ${digest.bytes} bytes arrived, ` +
          `not ${command.parts} of ${command.bytes}`,
      );
    }
    if (digest.hex() !== command.digest) return refused(`restore ${restoreId}: digest mismatch`);
    // A staging loaded from a snapshot of an older release may pass bounds its chunks did not check.
    if (staging.rowBytes > this.limits.groupStateBytesMax) {
      return refused(
        `restore ${restoreId}: its rows (${staging.rowBytes} bytes) pass the group's state bound (${this.limits.groupStateBytesMax})`,
      );
    }
    let summary: PartsSummary;
    try {
      summary = reader.finish();
    } catch (error) {
      if (error instanceof SnapshotPartError) return refused(`restore ${restoreId}: ${error.message}`);
      throw error;
    }
    if (summary.sessions.length > this.limits.sessionsMax) {
      return refused(
        `restore ${restoreId}: ${summary.sessions.length} sessions, over the group's ${this.limits.sessionsMax}`,
      );
    }
    return { commit: summary };
  }

  private refuse(error: string): RestoreResult {
    this.staging = null;
    return refused(error);
  }
}

/**
 * Rows as restored at index `index`: the restore is a write at that index, and an index
 * in the future of this log would break `?index` blocking and the stores' monotone table
 * indexes, so a row's create and modify indexes are clamped to it (restoring into the
 * cluster the snapshot came from, whose log is further on, keeps them all).
 */
export function restoredRows(options: {
  kvs: readonly KvEntry[];
  sessions: readonly SessionEntry[];
  index: number;
}): { kvs: KvEntry[]; sessions: SessionEntry[] } {
  const { index } = options;
  const clamp = <R extends { createIndex: number; modifyIndex: number }>(row: R): R =>
    row.modifyIndex <= index && row.createIndex <= index
      ? row
      : {
          ...row,
          createIndex: Math.min(row.createIndex, index),
          modifyIndex: Math.min(row.modifyIndex, index),
        };
  return { kvs: options.kvs.map(clamp), sessions: options.sessions.map(clamp) };
}

/** Estimated bytes of rows (fsm/snapshot-rows.ts): what the FSM counts as its state's size. */
export function rowsBytes(rows: {
  readonly kvs: readonly KvEntry[];
  readonly sessions: readonly SessionEntry[];
}): number {
  let bytes = 0;
  for (const entry of rows.kvs) bytes += kvRowBytes(entry);
  for (const session of rows.sessions) bytes += sessionRowBytes(session);
  return bytes;
}

const ok = (): RestoreResult => ({ type: 'restore', ok: true, error: null });
const refused = (error: string): RestoreResult => ({ type: 'restore', ok: false, error });
