import { assert } from '@conclave/raft';
import type { KvEntry, SessionEntry } from '../service/types.js';
import type { FsmResult } from './commands.js';
import { PartsDigest } from './parts-digest.js';
import type { RestoreCommand } from './restore-wire.js';
import { restoreGroupBytesMax } from './restore-wire.js';
import type { StagedRestore } from './snapshot-codec.js';
import { type PartsSummary, SnapshotPartError, SnapshotPartsReader } from './snapshot-parts.js';

type RestoreResult = Extract<FsmResult, { type: 'restore' }>;

interface Staging {
  readonly restoreId: string;
  /** Validates and decodes each part as it is applied, keeping the rows, not the bytes. */
  readonly reader: SnapshotPartsReader;
  /** Chained over the parts; its state is 32 bytes, so a Raft snapshot carries it (fsm/parts-digest.ts). */
  readonly digest: PartsDigest;
}

/**
 * A restore in progress in one group: begin starts it, each chunk (one snapshot part) is
 * decoded at once into staged rows, commit checks the whole and hands back the rows for the
 * FSM to swap in. At most one is staged at a time (a new begin drops the old one). A step
 * that is wrong in any way (another restore's id, a seq out of order, a malformed part, a
 * failed commit check) is refused and drops the staging, so nothing changes. These
 * commands may come from a client of the internal endpoint, so they are refused, never
 * asserted on, and every server reaches the same outcome from the same entries.
 */
export class RestoreStaging {
  private staging: Staging | null = null;

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
    this.staging = { restoreId: staged.restoreId, reader, digest: PartsDigest.resume(staged.digest) };
  }

  /** Runs begin, chunk and abort steps; for a commit, returns the verified rows or the refusal. */
  step(command: RestoreCommand): RestoreResult | { readonly commit: PartsSummary } {
    switch (command.type) {
      case 'restore-begin':
        this.staging = {
          restoreId: command.restoreId,
          reader: new SnapshotPartsReader({ keepRows: true }),
          digest: PartsDigest.start(),
        };
        return ok();
      case 'restore-chunk':
        return this.chunk(command);
      case 'restore-commit':
        return this.commit(command);
      case 'restore-abort':
        if (this.staging?.restoreId === command.restoreId) this.staging = null;
        return ok();
    }
  }

  private chunk(command: Extract<RestoreCommand, { type: 'restore-chunk' }>): RestoreResult {
    const { restoreId, seq, data } = command;
    const staging = this.staging;
    if (staging === null || staging.restoreId !== restoreId)
      return this.refuse(`restore ${restoreId} is not staged`);
    if (seq !== staging.reader.parts) {
      return this.refuse(
        `restore ${restoreId}: chunk ${seq} is out of order (expected ${staging.reader.parts})`,
      );
    }
    if (staging.digest.bytes + data.byteLength > restoreGroupBytesMax) {
      return this.refuse(`restore ${restoreId}: over restoreGroupBytesMax (${restoreGroupBytesMax} bytes)`);
    }
    try {
      staging.reader.push(data);
    } catch (error) {
      if (error instanceof SnapshotPartError) return this.refuse(`restore ${restoreId}: ${error.message}`);
      throw error;
    }
    staging.digest.update(data);
    return ok();
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
    try {
      return { commit: reader.finish() };
    } catch (error) {
      if (error instanceof SnapshotPartError) return refused(`restore ${restoreId}: ${error.message}`);
      throw error;
    }
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

const ok = (): RestoreResult => ({ type: 'restore', ok: true, error: null });
const refused = (error: string): RestoreResult => ({ type: 'restore', ok: false, error });
