import { assert } from '@conclave/raft';
import { autopilotSettingsToWire, type StoredAutopilot } from './autopilot.js';
import { type PartsDigestState, partsDigestBytes } from './parts-digest.js';
import { snapshotChunkBytesTarget, snapshotChunkRows, snapshotPartBytesMax } from './snapshot-limits.js';
import type { PartsHeader, PartsProgress } from './snapshot-parts.js';
import {
  autopilotFromWire,
  kvFromSnapshotWire,
  kvRowBytes,
  kvToWire,
  natural,
  packRowChunks,
  packr,
  SnapshotPartError,
  sessionFromWire,
  sessionRowBytes,
  sessionToWire,
} from './snapshot-rows.js';
import { stagingFromV3 } from './snapshot-v3.js';
import type { KvEntry, SessionEntry } from './types.js';

export { snapshotChunkBytesTarget, snapshotChunkRows, snapshotPartBytesMax } from './snapshot-limits.js';

/**
 * The snapshot encoding's version; restore asserts on any other. Version 4 carries a user
 * restore in progress as its decoded rows (version 3 carried its raw chunks); versions 2
 * (no autopilot, no staging) and 3 still load.
 */
export const snapshotVersion = 4;

/** Everything an FSM holds: both tables, their last-change indexes and the applied index. */
export interface FsmState {
  readonly appliedIndex: number;
  readonly kvIndex: number;
  readonly sessionIndex: number;
  /** Sorted by key. */
  readonly kvs: readonly KvEntry[];
  /** Sorted by id. */
  readonly sessions: readonly SessionEntry[];
  /** Autopilot's settings: only group 0 ever holds them; null until first set. */
  readonly autopilot: StoredAutopilot | null;
  /**
   * A user restore staged but not committed: part of the replicated state, so a server that
   * installs this snapshot mid-restore reaches the same commit as every other.
   */
  readonly restoreStaging: StagedRestore | null;
}

/** A user restore in progress, as a Raft snapshot carries it. */
export interface StagedRestore {
  readonly restoreId: string;
  /** Parts taken so far: the next chunk's seq. */
  readonly parts: number;
  /** The chained digest of the parts so far (its `bytes` is their total). */
  readonly digest: PartsDigestState;
  /** The decoded header and rows so far; null before the header arrived. */
  readonly progress: PartsProgress | null;
}

/** Encodes a whole state at once (tests, small states). */
export function encodeSnapshot(state: FsmState): Uint8Array {
  const steps = encodeSnapshotSteps(state);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * Bytes copied into the whole snapshot per step once its parts are encoded. Measured: one
 * Buffer.concat of a 128 MiB group held the event loop for 0.3 to 1.8 s (fresh pages fault
 * in as they are first written), long enough to lose leaderships.
 */
export const snapshotCopySliceBytes = 1024 * 1024;

/**
 * Encodes a state one part (header or row chunk) per step, then copies the parts into one
 * buffer a slice per step; the bytes are those of every part in order.
 */
export function* encodeSnapshotSteps(state: FsmState): Generator<void, Uint8Array, void> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const part of encodeSnapshotParts(state)) {
    parts.push(part);
    total += part.byteLength;
    yield;
  }
  const whole = Buffer.allocUnsafe(total);
  let offset = 0;
  let sinceStep = 0;
  for (const part of parts) {
    whole.set(part, offset);
    offset += part.byteLength;
    sinceStep += part.byteLength;
    if (sinceStep >= snapshotCopySliceBytes) {
      sinceStep = 0;
      yield;
    }
  }
  assert(offset === total, 'a snapshot is exactly its parts');
  return whole;
}

/**
 * The snapshot as a sequence of msgpack values, one per `next()`: the header [version,
 * appliedIndex, kvIndex, sessionIndex, kvCount, sessionCount, autopilot, staging], the kv
 * rows and the session rows as fixed tuples, then a staged restore's kv and session rows,
 * each kind in chunks of its own (`packRowChunks`), in key order: the same state always
 * encodes to the same bytes. Every part is at most `snapshotPartBytesMax`.
 */
export function* encodeSnapshotParts(state: FsmState): Generator<Uint8Array, void, void> {
  const staging = state.restoreStaging;
  yield checkedPart(
    packr.pack([
      snapshotVersion,
      state.appliedIndex,
      state.kvIndex,
      state.sessionIndex,
      state.kvs.length,
      state.sessions.length,
      autopilotToWire(state.autopilot),
      staging === null ? null : stagingToWire(staging),
    ]),
  );
  const progress = staging?.progress ?? null;
  const tables: [Iterable<KvEntry>, Iterable<SessionEntry>][] = [[state.kvs, state.sessions]];
  if (progress !== null) tables.push([flatten(progress.kvs), flatten(progress.sessions)]);
  for (const [kvs, sessions] of tables) {
    const common = { rowsMax: snapshotChunkRows, bytesTarget: snapshotChunkBytesTarget };
    for (const part of packRowChunks({ ...common, rows: kvs, toWire: kvToWire, rowBytes: kvRowBytes })) {
      yield checkedPart(part);
    }
    const sessionChunks = packRowChunks({
      ...common,
      rows: sessions,
      toWire: sessionToWire,
      rowBytes: sessionRowBytes,
    });
    for (const part of sessionChunks) yield checkedPart(part);
  }
}

/** The rows of staged chunks in order, without copying them into one array. */
function* flatten<R>(chunks: readonly (readonly R[])[]): Generator<R, void, void> {
  for (const chunk of chunks) yield* chunk;
}

function checkedPart(part: Uint8Array): Uint8Array {
  assert(
    part.byteLength <= snapshotPartBytesMax,
    () => `an FSM snapshot part of ${part.byteLength} bytes is over ${snapshotPartBytesMax}`,
  );
  return part;
}

function autopilotToWire(autopilot: StoredAutopilot | null): unknown {
  return autopilot === null
    ? null
    : [autopilotSettingsToWire(autopilot.settings), autopilot.createIndex, autopilot.modifyIndex];
}

/** [restoreId, parts, [digest (32 bytes), bytes], null | [header, stagedKvs, stagedSessions]]. */
function stagingToWire(staging: StagedRestore): unknown[] {
  const { progress, digest } = staging;
  const rows =
    progress === null
      ? null
      : [
          partsHeaderToWire(progress.header),
          progress.kvs.reduce((n, chunk) => n + chunk.length, 0),
          progress.sessions.reduce((n, chunk) => n + chunk.length, 0),
        ];
  return [staging.restoreId, staging.parts, [digest.digest, digest.bytes], rows];
}

function partsHeaderToWire(h: PartsHeader): unknown[] {
  return [h.appliedIndex, h.kvIndex, h.sessionIndex, h.keys, h.sessionCount, autopilotToWire(h.autopilot)];
}

/**
 * Decodes a snapshot of version 2, 3 or 4, asserting every field: a bad snapshot must not load.
 * The kv values returned are views of `data` (see kvFromSnapshotWire): the caller hands the
 * bytes over and must not modify them afterwards.
 */
export function decodeSnapshot(data: Uint8Array): FsmState {
  try {
    return decodeOrRefuse(data);
  } catch (error) {
    if (error instanceof SnapshotPartError) assert(false, `FSM snapshot: ${error.message}`);
    throw error;
  }
}

function decodeOrRefuse(data: Uint8Array): FsmState {
  const values = packr.unpackMultiple(Buffer.from(data.buffer, data.byteOffset, data.byteLength)) ?? [];
  const [header, ...chunks] = values as unknown[];
  assert(Array.isArray(header), 'an FSM snapshot starts with a header');
  const [version, appliedIndex, kvIndex, sessionIndex, kvCount, sessionCount, autopilot, staging] =
    header as unknown[];
  assert(
    ((version === 4 || version === 3) && header.length === 8) || (version === 2 && header.length === 6),
    () => `unknown FSM snapshot version ${String(version)} (header of ${header.length})`,
  );
  const rows = new RowCursor(chunks);
  const kvs = rows.take(natural(kvCount, 'kvCount'), kvFromSnapshotWire);
  const sessions = rows.take(natural(sessionCount, 'sessionCount'), sessionFromWire);
  let restoreStaging: StagedRestore | null = null;
  if (staging !== undefined && staging !== null) {
    restoreStaging = version === 3 ? stagingFromV3(staging) : stagingFromWire(staging, rows);
  }
  assert(rows.done(), 'snapshot row counts match its header');
  return {
    appliedIndex: natural(appliedIndex, 'appliedIndex'),
    kvIndex: natural(kvIndex, 'kvIndex'),
    sessionIndex: natural(sessionIndex, 'sessionIndex'),
    kvs,
    sessions,
    autopilot: autopilot === undefined || autopilot === null ? null : autopilotFromWire(autopilot),
    restoreStaging,
  };
}

function stagingFromWire(wire: unknown, rows: RowCursor): StagedRestore {
  assert(Array.isArray(wire) && wire.length === 4, 'snapshot restore staging: 4 fields');
  const [restoreId, parts, digestWire, stagedRows] = wire as unknown[];
  assert(typeof restoreId === 'string', 'staging restoreId is a string');
  assert(Array.isArray(digestWire) && digestWire.length === 2, 'staging digest: [digest, bytes]');
  const [chained, bytes] = digestWire as unknown[];
  assert(
    chained instanceof Uint8Array && chained.byteLength === partsDigestBytes,
    'staging digest: 32 bytes',
  );
  // A copy: the decoder's value may be a view of the whole snapshot's buffer.
  const digest = { digest: new Uint8Array(chained), bytes: natural(bytes, 'staging bytes') };
  const taken = natural(parts, 'staging parts');
  if (stagedRows === null) {
    assert(taken === 0 && digest.bytes === 0, 'a staging without a header has taken no part');
    return { restoreId, parts: taken, digest, progress: null };
  }
  assert(taken >= 1 && Array.isArray(stagedRows) && stagedRows.length === 3, 'staging rows: 3 fields');
  const [header, stagedKvs, stagedSessions] = stagedRows as unknown[];
  const progress: PartsProgress = {
    header: partsHeaderFromWire(header),
    kvs: [rows.take(natural(stagedKvs, 'staged kvs'), kvFromSnapshotWire)],
    sessions: [rows.take(natural(stagedSessions, 'staged sessions'), sessionFromWire)],
  };
  return { restoreId, parts: taken, digest, progress };
}

function partsHeaderFromWire(wire: unknown): PartsHeader {
  assert(Array.isArray(wire) && wire.length === 6, 'staging header: 6 fields');
  const [appliedIndex, kvIndex, sessionIndex, keys, sessionCount, autopilot] = wire as unknown[];
  return {
    appliedIndex: natural(appliedIndex, 'staged appliedIndex'),
    kvIndex: natural(kvIndex, 'staged kvIndex'),
    sessionIndex: natural(sessionIndex, 'staged sessionIndex'),
    keys: natural(keys, 'staged keys'),
    sessionCount: natural(sessionCount, 'staged sessionCount'),
    autopilot: autopilot === null ? null : autopilotFromWire(autopilot),
  };
}

/** Reads rows across the row chunks in order, whatever their boundaries. */
class RowCursor {
  private chunk = 0;
  private row = 0;

  constructor(private readonly chunks: readonly unknown[]) {}

  take<R>(count: number, fromWire: (wire: unknown) => R): R[] {
    const rows: R[] = [];
    while (rows.length < count) {
      const chunk = this.chunks[this.chunk];
      assert(Array.isArray(chunk), 'snapshot row counts match its header (chunks are arrays)');
      if (this.row >= chunk.length) {
        this.chunk += 1;
        this.row = 0;
        continue;
      }
      rows.push(fromWire(chunk[this.row]));
      this.row += 1;
    }
    return rows;
  }

  /** True when every row of every chunk was taken. */
  done(): boolean {
    for (let i = this.chunk; i < this.chunks.length; i++) {
      const chunk = this.chunks[i];
      assert(Array.isArray(chunk), 'snapshot chunks are arrays');
      if (chunk.length > (i === this.chunk ? this.row : 0)) return false;
    }
    return true;
  }
}
