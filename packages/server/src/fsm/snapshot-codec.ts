import { assert } from '@conclave/raft';
import { Packr } from 'msgpackr';
import type { KvEntry, SessionEntry } from '../service/types.js';
import { autopilotSettingsFromWire, autopilotSettingsToWire, type StoredAutopilot } from './autopilot.js';

/**
 * The snapshot encoding's version; restore refuses (asserts on) any other. Version 3 adds
 * autopilot's settings and a user restore in progress (its staged chunks) to the header;
 * version 2 snapshots (without them) still restore.
 */
export const snapshotVersion = 3;

/**
 * Rows per encoded chunk. A chunk of 256-byte values packs in about 4 ms, so encoding
 * a large state one chunk per step never holds the event loop long (a whole 56 MB state
 * packed at once held it for ~300 ms, past an election timeout).
 */
export const snapshotChunkRows = 4096;

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
   * A user restore whose chunks are staged but not committed: part of the replicated state,
   * so a server that installs this snapshot mid-restore commits it like every other.
   */
  readonly restoreStaging: RestoreStagingWire | null;
}

/** [restoreId, bytes, sha256, nextSeq, chunks]. */
export type RestoreStagingWire = readonly [string, number, string, number, readonly Uint8Array[]];

const packr = new Packr({ useRecords: false, moreTypes: false });

type KvWire = [string, Uint8Array, number, number, number, number, string | null];
type SessionWire = [string, string, string, number, string, number, number, number];

/** Encodes a whole state at once (tests, small states). */
export function encodeSnapshot(state: FsmState): Uint8Array {
  const steps = encodeSnapshotSteps(state);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * Encodes a state one chunk per step: a sequence of msgpack values, first the header
 * [version, appliedIndex, kvIndex, sessionIndex, kvCount, sessionCount], then the kv rows
 * and the session rows as fixed tuples, in chunks of `snapshotChunkRows`, in key order: the
 * same state always encodes to the same bytes.
 */
export function* encodeSnapshotSteps(state: FsmState): Generator<void, Uint8Array, void> {
  const parts: Uint8Array[] = [
    packr.pack([
      snapshotVersion,
      state.appliedIndex,
      state.kvIndex,
      state.sessionIndex,
      state.kvs.length,
      state.sessions.length,
      state.autopilot === null
        ? null
        : [
            autopilotSettingsToWire(state.autopilot.settings),
            state.autopilot.createIndex,
            state.autopilot.modifyIndex,
          ],
      state.restoreStaging,
    ]),
  ];
  for (let i = 0; i < state.kvs.length; i += snapshotChunkRows) {
    parts.push(packr.pack(state.kvs.slice(i, i + snapshotChunkRows).map(kvToWire)));
    yield;
  }
  for (let i = 0; i < state.sessions.length; i += snapshotChunkRows) {
    parts.push(packr.pack(state.sessions.slice(i, i + snapshotChunkRows).map(sessionToWire)));
    yield;
  }
  return Buffer.concat(parts);
}

function kvToWire(e: KvEntry): KvWire {
  return [e.key, e.value, e.flags, e.createIndex, e.modifyIndex, e.lockIndex, e.session];
}

function sessionToWire(s: SessionEntry): SessionWire {
  return [s.id, s.name, s.node, s.ttlSeconds, s.behavior, s.lockDelayMs, s.createIndex, s.modifyIndex];
}

/** Decodes a snapshot, asserting its version and every field: a bad snapshot must not load. */
export function decodeSnapshot(data: Uint8Array): FsmState {
  const values = packr.unpackMultiple(Buffer.from(data.buffer, data.byteOffset, data.byteLength)) ?? [];
  const [header, ...chunks] = values as unknown[];
  assert(Array.isArray(header), 'an FSM snapshot starts with a header');
  const [version, appliedIndex, kvIndex, sessionIndex, kvCount, sessionCount, autopilot, staging] =
    header as unknown[];
  assert(
    (version === snapshotVersion && header.length === 8) || (version === 2 && header.length === 6),
    () => `unknown FSM snapshot version ${String(version)} (header of ${header.length})`,
  );
  const rows: unknown[] = [];
  for (const chunk of chunks) {
    assert(Array.isArray(chunk), 'snapshot chunks are arrays');
    for (const row of chunk) rows.push(row);
  }
  const kvTotal = natural(kvCount);
  assert(rows.length === kvTotal + natural(sessionCount), 'snapshot row counts match its header');
  return {
    appliedIndex: natural(appliedIndex),
    kvIndex: natural(kvIndex),
    sessionIndex: natural(sessionIndex),
    kvs: rows.slice(0, kvTotal).map(kvFromWire),
    sessions: rows.slice(kvTotal).map(sessionFromWire),
    autopilot: autopilot === undefined || autopilot === null ? null : autopilotFromWire(autopilot),
    restoreStaging: staging === undefined || staging === null ? null : stagingFromWire(staging),
  };
}

function stagingFromWire(wire: unknown): RestoreStagingWire {
  assert(Array.isArray(wire) && wire.length === 5, 'snapshot restore staging: 5 fields');
  const [restoreId, bytes, sha256, nextSeq, chunks] = wire as unknown[];
  assert(typeof restoreId === 'string' && typeof sha256 === 'string', 'staging id and sum are strings');
  assert(Array.isArray(chunks) && chunks.every((c) => c instanceof Uint8Array), 'staging chunks are bytes');
  return [
    restoreId,
    natural(bytes),
    sha256,
    natural(nextSeq),
    chunks.map((c: Uint8Array) => new Uint8Array(c)),
  ];
}

function autopilotFromWire(wire: unknown): StoredAutopilot {
  assert(
    Array.isArray(wire) && wire.length === 3,
    'snapshot autopilot: [settings, createIndex, modifyIndex]',
  );
  return {
    settings: autopilotSettingsFromWire(wire[0]),
    createIndex: natural(wire[1]),
    modifyIndex: natural(wire[2]),
  };
}

function kvFromWire(wire: unknown): KvEntry {
  assert(Array.isArray(wire) && wire.length === 7, 'a snapshot kv row has 7 fields');
  const [key, value, flags, createIndex, modifyIndex, lockIndex, session] = wire as unknown[];
  assert(typeof key === 'string', 'kv key is a string');
  assert(value instanceof Uint8Array, 'kv value is bytes');
  assert(session === null || typeof session === 'string', 'kv session is a string or null');
  return {
    key,
    value: new Uint8Array(value),
    flags: natural(flags),
    createIndex: natural(createIndex),
    modifyIndex: natural(modifyIndex),
    lockIndex: natural(lockIndex),
    session,
  };
}

function sessionFromWire(wire: unknown): SessionEntry {
  assert(Array.isArray(wire) && wire.length === 8, 'a snapshot session row has 8 fields');
  const [id, name, node, ttlSeconds, behavior, lockDelayMs, createIndex, modifyIndex] = wire as unknown[];
  assert(typeof id === 'string' && typeof name === 'string' && typeof node === 'string', 'session strings');
  assert(
    behavior === 'release' || behavior === 'delete',
    () => `unknown session behavior ${String(behavior)}`,
  );
  return {
    id,
    name,
    node,
    ttlSeconds: natural(ttlSeconds),
    behavior,
    lockDelayMs: natural(lockDelayMs),
    createIndex: natural(createIndex),
    modifyIndex: natural(modifyIndex),
  };
}

/** A non-negative safe integer (indexes, flags, durations). */
function natural(value: unknown): number {
  assert(
    typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
    () => `not a count: ${String(value)}`,
  );
  return value;
}
