import { createHash, type Hash } from 'node:crypto';
import type { KvEntry, SessionEntry } from '../service/types.js';
import type { FsmCommand, FsmResult } from './commands.js';
import { decodeSnapshot, type FsmState, type RestoreStagingWire } from './snapshot-codec.js';

type Step = Extract<FsmCommand, { type: 'restore-begin' | 'restore-chunk' | 'restore-commit' }>;
type RestoreResult = Extract<FsmResult, { type: 'restore' }>;

interface Staging {
  readonly restoreId: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly chunks: Uint8Array[];
  readonly hash: Hash;
  received: number;
  nextSeq: number;
}

/**
 * A restore in progress in one group: begin names the state's size and SHA-256, chunks
 * arrive in order, commit checks the whole and hands back the decoded state for the FSM to
 * swap in. At most one is staged at a time (a new begin drops the old one), and any step
 * out of order drops the staging, so its commit fails and nothing changes. Deterministic:
 * every server stages the same entries the same way.
 */
export class RestoreStaging {
  private staging: Staging | null = null;

  /** What a snapshot carries of a restore in progress (the chunks are immutable, shared). */
  capture(): RestoreStagingWire | null {
    const s = this.staging;
    return s === null ? null : [s.restoreId, s.bytes, s.sha256, s.nextSeq, [...s.chunks]];
  }

  /** Take over a snapshot's staging (the running hash is recomputed from the chunks). */
  load(wire: RestoreStagingWire | null): void {
    if (wire === null) {
      this.staging = null;
      return;
    }
    const [restoreId, bytes, sha256, nextSeq, chunks] = wire;
    const hash = createHash('sha256');
    let received = 0;
    for (const chunk of chunks) {
      hash.update(chunk);
      received += chunk.byteLength;
    }
    this.staging = { restoreId, bytes, sha256, chunks: [...chunks], hash, received, nextSeq };
  }

  /** Runs begin and chunk steps; for a commit, returns the verified state or the refusal. */
  step(command: Step): RestoreResult | { readonly commit: FsmState } {
    switch (command.type) {
      case 'restore-begin':
        this.staging = {
          restoreId: command.restoreId,
          bytes: command.bytes,
          sha256: command.sha256,
          chunks: [],
          hash: createHash('sha256'),
          received: 0,
          nextSeq: 0,
        };
        return ok();
      case 'restore-chunk':
        return this.chunk(command);
      case 'restore-commit':
        return this.commit(command.restoreId);
    }
  }

  private chunk(command: Extract<Step, { type: 'restore-chunk' }>): RestoreResult {
    const staging = this.staging;
    if (staging === null || staging.restoreId !== command.restoreId) {
      return refused(`restore ${command.restoreId} is not the one staged`);
    }
    if (command.seq !== staging.nextSeq || staging.received + command.data.byteLength > staging.bytes) {
      this.staging = null;
      return refused(`restore ${command.restoreId}: chunk ${command.seq} is out of order or past the size`);
    }
    staging.chunks.push(command.data);
    staging.hash.update(command.data);
    staging.received += command.data.byteLength;
    staging.nextSeq += 1;
    return ok();
  }

  private commit(restoreId: string): RestoreResult | { readonly commit: FsmState } {
    const staging = this.staging;
    if (staging === null || staging.restoreId !== restoreId)
      return refused(`restore ${restoreId} is not staged`);
    this.staging = null;
    if (staging.received !== staging.bytes) {
      return refused(`restore ${restoreId}: ${staging.received} of ${staging.bytes} bytes arrived`);
    }
    if (staging.hash.digest('hex') !== staging.sha256)
      return refused(`restore ${restoreId}: SHA-256 mismatch`);
    // The sum matches what the proposing server verified and decoded (service/snapshot.ts),
    // so this decode cannot fail unless that server was wrong, which is a bug: let it assert.
    return { commit: decodeSnapshot(Buffer.concat(staging.chunks)) };
  }
}

/**
 * Rows as restored at index `index`: the restore is a write at that index, and an index
 * in the future of this log would break `?index` blocking and the stores' monotone table
 * indexes, so a row's create and modify indexes are clamped to it (restoring into the
 * cluster the snapshot came from, whose log is further on, keeps them all).
 */
export function restoredRows(options: { state: FsmState; index: number }): {
  kvs: KvEntry[];
  sessions: SessionEntry[];
} {
  const { state, index } = options;
  const clamp = <R extends { createIndex: number; modifyIndex: number }>(row: R): R =>
    row.modifyIndex <= index && row.createIndex <= index
      ? row
      : {
          ...row,
          createIndex: Math.min(row.createIndex, index),
          modifyIndex: Math.min(row.modifyIndex, index),
        };
  return { kvs: state.kvs.map(clamp), sessions: state.sessions.map(clamp) };
}

const ok = (): RestoreResult => ({ type: 'restore', ok: true, error: null });
const refused = (error: string): RestoreResult => ({ type: 'restore', ok: false, error });
