import { Packr } from 'msgpackr';
import { autopilotSettingsFromWire, type StoredAutopilot } from './autopilot.js';
import type { KvEntry, SessionEntry } from './types.js';

/**
 * The rows of an FSM snapshot as msgpack tuples, and their checks. The checks throw
 * SnapshotPartError, not assertions: user archives and restore commands come from outside
 * and are refused; the Raft snapshot decoder turns these errors into assertions.
 */

/** A malformed snapshot part: the message says what is wrong, for a human. */
export class SnapshotPartError extends Error {
  override readonly name = 'SnapshotPartError';
}

// Records off: the bytes depend only on the values, never on what this encoder saw before.
export const packr = new Packr({ useRecords: false, moreTypes: false });

export type KvWire = [string, Uint8Array, number, number, number, number, string | null];
export type SessionWire = [string, string, string, number, string, number, number, number];

/**
 * Bytes a row's tuple may take, at most: a JS string of n UTF-16 units is at most 3n bytes
 * of UTF-8; each msgpack header, number and nil fits the fixed allowance. Deterministic, so
 * the same rows always close a chunk at the same place.
 */
const kvRowOverheadBytes = 64;
const sessionRowOverheadBytes = 96;

export function kvRowBytes(e: Pick<KvEntry, 'key' | 'value' | 'session'>): number {
  return kvRowBytesOf({
    keyChars: e.key.length,
    valueBytes: e.value.byteLength,
    sessionChars: e.session?.length ?? 0,
  });
}

/** The same estimate from lengths alone: for checking a limit before any row exists. */
export function kvRowBytesOf(options: {
  keyChars: number;
  valueBytes: number;
  sessionChars: number;
}): number {
  return 3 * options.keyChars + options.valueBytes + 3 * options.sessionChars + kvRowOverheadBytes;
}

export function sessionRowBytes(s: SessionEntry): number {
  return 3 * (s.id.length + s.name.length + s.node.length) + sessionRowOverheadBytes;
}

export function kvToWire(e: KvEntry): KvWire {
  return [e.key, e.value, e.flags, e.createIndex, e.modifyIndex, e.lockIndex, e.session];
}

export function sessionToWire(s: SessionEntry): SessionWire {
  return [s.id, s.name, s.node, s.ttlSeconds, s.behavior, s.lockDelayMs, s.createIndex, s.modifyIndex];
}

/**
 * A kv row from its tuple, with its value copied: for user snapshot parts and restore
 * commands, where the decoder hands a view of one part, which must not be kept alive by one
 * row (a restore stages rows from many parts; one row left would pin its whole part).
 */
export function kvFromWire(wire: unknown): KvEntry {
  return kvRowFromWire(wire, copyValue);
}

/**
 * A kv row from its tuple, its value a view of the bytes it was decoded from, not a copy: for
 * a Raft snapshot restored whole (decodeSnapshot), whose bytes are nearly all values anyway.
 * Copying them was measured at ~0.8 s per GiB at start-up (fresh pages faulting in) and
 * doubled the peak memory of a restore. What it costs: the snapshot's buffer stays alive
 * while any of its values does, for as long as one old key survives (the process's life,
 * perhaps), so with churn a group's memory tends to snapshot + live state: the peak a
 * copying restore reached anyway, but kept. The caller must not modify the bytes.
 */
export function kvFromSnapshotWire(wire: unknown): KvEntry {
  return kvRowFromWire(wire, viewValue);
}

function copyValue(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

/** A plain Uint8Array over the same memory (the decoder may hand a Buffer). */
function viewValue(value: Uint8Array): Uint8Array {
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function kvRowFromWire(wire: unknown, ownValue: (value: Uint8Array) => Uint8Array): KvEntry {
  if (!Array.isArray(wire) || wire.length !== 7) throw new SnapshotPartError('a kv row is not 7 fields');
  const [key, value, flags, createIndex, modifyIndex, lockIndex, session] = wire as unknown[];
  if (typeof key !== 'string') throw new SnapshotPartError('a kv row key is not a string');
  if (!(value instanceof Uint8Array)) throw new SnapshotPartError(`kv ${key}: the value is not bytes`);
  if (session !== null && typeof session !== 'string') {
    throw new SnapshotPartError(`kv ${key}: the session is not a string or null`);
  }
  return Object.freeze({
    key,
    value: ownValue(value),
    flags: natural(flags, `kv ${key} flags`),
    createIndex: natural(createIndex, `kv ${key} createIndex`),
    modifyIndex: natural(modifyIndex, `kv ${key} modifyIndex`),
    lockIndex: natural(lockIndex, `kv ${key} lockIndex`),
    session,
  });
}

export function sessionFromWire(wire: unknown): SessionEntry {
  if (!Array.isArray(wire) || wire.length !== 8) throw new SnapshotPartError('a session row is not 8 fields');
  const [id, name, node, ttlSeconds, behavior, lockDelayMs, createIndex, modifyIndex] = wire as unknown[];
  if (typeof id !== 'string' || typeof name !== 'string' || typeof node !== 'string') {
    throw new SnapshotPartError('a session row id, name or node is not a string');
  }
  if (behavior !== 'release' && behavior !== 'delete') {
    throw new SnapshotPartError(`session ${id}: unknown behavior ${String(behavior)}`);
  }
  return Object.freeze({
    id,
    name,
    node,
    ttlSeconds: natural(ttlSeconds, `session ${id} ttlSeconds`),
    behavior,
    lockDelayMs: natural(lockDelayMs, `session ${id} lockDelayMs`),
    createIndex: natural(createIndex, `session ${id} createIndex`),
    modifyIndex: natural(modifyIndex, `session ${id} modifyIndex`),
  });
}

export function autopilotFromWire(wire: unknown): StoredAutopilot {
  if (!Array.isArray(wire) || wire.length !== 3) {
    throw new SnapshotPartError('the autopilot field is not [settings, createIndex, modifyIndex]');
  }
  const settings: unknown = wire[0];
  // Checked here first: autopilotSettingsFromWire asserts, and this input is refused instead.
  if (
    !Array.isArray(settings) ||
    settings.length !== 6 ||
    typeof settings[0] !== 'boolean' ||
    !settings.slice(1).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
  ) {
    throw new SnapshotPartError('the autopilot settings are not [boolean, 5 whole numbers]');
  }
  return {
    settings: autopilotSettingsFromWire(settings),
    createIndex: natural(wire[1], 'autopilot createIndex'),
    modifyIndex: natural(wire[2], 'autopilot modifyIndex'),
  };
}

/** A non-negative safe integer (indexes, counts, flags, durations). */
export function natural(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new SnapshotPartError(`${what} is not a whole number >= 0`);
  }
  return value;
}

/**
 * Packs rows into chunks that close at `rowsMax` rows or once their estimated size reaches
 * `bytesTarget`: one chunk per `next()`, so a host can encode a large table a step at a time.
 */
export function* packRowChunks<R>(options: {
  rows: Iterable<R>;
  toWire: (row: R) => unknown;
  rowBytes: (row: R) => number;
  rowsMax: number;
  bytesTarget: number;
}): Generator<Uint8Array, void, void> {
  let chunk: unknown[] = [];
  let bytes = 0;
  for (const row of options.rows) {
    chunk.push(options.toWire(row));
    bytes += options.rowBytes(row);
    if (chunk.length >= options.rowsMax || bytes >= options.bytesTarget) {
      yield packr.pack(chunk);
      chunk = [];
      bytes = 0;
    }
  }
  if (chunk.length > 0) yield packr.pack(chunk);
}
