import { assert } from '@conclave/raft';
import type { StoredAutopilot } from './autopilot.js';
import { groupSessionsMax, snapshotPartBytesMax, snapshotRowBytesMax } from './snapshot-limits.js';
import {
  autopilotFromWire,
  kvFromWire,
  kvRowBytes,
  natural,
  packr,
  SnapshotPartError,
  sessionFromWire,
  sessionRowBytes,
} from './snapshot-rows.js';
import type { KvEntry, SessionEntry } from './types.js';

export { SnapshotPartError } from './snapshot-rows.js';

/**
 * Most distinct sessions the kv rows of one snapshot may reference. Sessions come after the
 * kvs, so the references are held until then. The FSM never holds more sessions than this
 * in a group (groupSessionsMax), so every snapshot it takes reads back.
 */
export const snapshotReferencedSessionsMax = groupSessionsMax;

/** A user snapshot's header: what its parts will hold. */
export interface PartsHeader {
  readonly appliedIndex: number;
  readonly kvIndex: number;
  readonly sessionIndex: number;
  /** Kv rows that follow. */
  readonly keys: number;
  /** Session rows that follow the kv rows. */
  readonly sessionCount: number;
  readonly autopilot: StoredAutopilot | null;
}

export interface PartsSummary extends PartsHeader {
  /** Every kv row, by key; empty when the reader keeps no rows. */
  readonly kvs: KvEntry[];
  /** Every session row, by id; empty when the reader keeps no rows. */
  readonly sessions: SessionEntry[];
}

/** What a reader keeping rows has taken so far, to carry in a Raft snapshot (parts are immutable). */
export interface PartsProgress {
  readonly header: PartsHeader;
  readonly kvs: readonly (readonly KvEntry[])[];
  readonly sessions: readonly (readonly SessionEntry[])[];
}

/**
 * Validates an FSM snapshot one part (one msgpack value) at a time: the header, then row
 * chunks, kvs before sessions, each kind sorted and never mixed in one chunk. Anything
 * malformed throws SnapshotPartError. With `keepRows` false it holds no rows, only the
 * references from kv rows to sessions (at most `snapshotReferencedSessionsMax`), so a
 * stream of any size goes through in bounded memory.
 */
export class SnapshotPartsReader {
  private header: PartsHeader | null = null;
  private readonly kvChunks: KvEntry[][] = [];
  private readonly sessionChunks: SessionEntry[][] = [];
  private kvsSeen = 0;
  private sessionsSeen = 0;
  private lastKey: string | null = null;
  private lastSessionId: string | null = null;
  /** Session ids kv rows reference; true once the session's row arrived. */
  private readonly referenced = new Map<string, boolean>();
  private finished = false;
  private partsSeen = 0;

  constructor(private readonly options: { readonly keepRows: boolean }) {}

  /** Parts taken so far, the header included. */
  get parts(): number {
    return this.partsSeen;
  }

  /**
   * A reader (keeping rows) that has taken `parts` parts holding these rows, as a Raft
   * snapshot carries them; throws SnapshotPartError if the rows break the header's rules.
   */
  static resume(options: { progress: PartsProgress; parts: number }): SnapshotPartsReader {
    const { progress } = options;
    const reader = new SnapshotPartsReader({ keepRows: true });
    reader.header = progress.header;
    if (options.parts < 1) throw new SnapshotPartError('staged rows without a header part');
    reader.partsSeen = options.parts;
    for (const rows of progress.kvs) reader.takeKvs(rows);
    for (const rows of progress.sessions) reader.takeSessions(rows);
    return reader;
  }

  /** The rows decoded from this part (none for the header), whether or not they are kept. */
  push(part: Uint8Array): { kvs: KvEntry[]; sessions: SessionEntry[] } {
    assert(!this.finished, 'a snapshot parts reader takes no part after finish');
    const where = `part ${this.partsSeen}`;
    if (part.byteLength > snapshotPartBytesMax) {
      throw new SnapshotPartError(`${where} is ${part.byteLength} bytes, over ${snapshotPartBytesMax}`);
    }
    const value = onlyValue(part, where);
    this.partsSeen += 1;
    if (this.header === null) {
      this.header = partsHeaderFromWire(value);
      return { kvs: [], sessions: [] };
    }
    if (this.kvsSeen === this.header.keys && this.sessionsSeen === this.header.sessionCount) {
      throw new SnapshotPartError(`${where} comes after the last of the header's rows`);
    }
    if (!Array.isArray(value) || value.length === 0) {
      throw new SnapshotPartError(`${where} is not a non-empty array of rows`);
    }
    if (this.kvsSeen < this.header.keys) {
      const kvs = value.map(kvFromWire);
      this.takeKvs(kvs);
      return { kvs, sessions: [] };
    }
    const sessions = value.map(sessionFromWire);
    this.takeSessions(sessions);
    return { kvs: [], sessions };
  }

  /** What a Raft snapshot carries of this reader: null before the header. */
  progress(): PartsProgress | null {
    if (this.header === null) return null;
    return { header: this.header, kvs: [...this.kvChunks], sessions: [...this.sessionChunks] };
  }

  /** Checks that every row arrived and every kv row's session exists; the reader is done. */
  finish(): PartsSummary {
    assert(!this.finished, 'a snapshot parts reader finishes once');
    this.finished = true;
    const header = this.header;
    if (header === null) throw new SnapshotPartError('the snapshot has no header');
    if (this.kvsSeen !== header.keys || this.sessionsSeen !== header.sessionCount) {
      throw new SnapshotPartError(
        `the snapshot ends after ${this.kvsSeen} of ${header.keys} keys and ` +
          `${this.sessionsSeen} of ${header.sessionCount} sessions`,
      );
    }
    for (const [id, found] of this.referenced) {
      if (!found) throw new SnapshotPartError(`a key is held by session ${id}, which the snapshot lacks`);
    }
    return { ...header, kvs: this.kvChunks.flat(), sessions: this.sessionChunks.flat() };
  }

  private takeKvs(kvs: readonly KvEntry[]): void {
    const header = this.requireHeader();
    if (this.kvsSeen + kvs.length > header.keys) {
      throw new SnapshotPartError(`more than the header's ${header.keys} keys, or kvs and sessions mixed`);
    }
    for (const entry of kvs) {
      if (this.lastKey !== null && !(this.lastKey < entry.key)) {
        throw new SnapshotPartError(`key ${entry.key} is not after ${this.lastKey}`);
      }
      this.lastKey = entry.key;
      if (kvRowBytes(entry) > snapshotRowBytesMax) {
        throw new SnapshotPartError(
          `key ${entry.key} is larger than a row may be (${snapshotRowBytesMax} bytes)`,
        );
      }
      if (entry.session !== null && !this.referenced.has(entry.session)) {
        if (this.referenced.size >= snapshotReferencedSessionsMax) {
          throw new SnapshotPartError(`keys reference over ${snapshotReferencedSessionsMax} sessions`);
        }
        this.referenced.set(entry.session, false);
      }
    }
    this.kvsSeen += kvs.length;
    if (this.options.keepRows && kvs.length > 0) this.kvChunks.push([...kvs]);
  }

  private takeSessions(sessions: readonly SessionEntry[]): void {
    const header = this.requireHeader();
    if (sessions.length > 0 && this.kvsSeen < header.keys) {
      throw new SnapshotPartError('session rows before every key arrived');
    }
    if (this.sessionsSeen + sessions.length > header.sessionCount) {
      throw new SnapshotPartError(`more than the header's ${header.sessionCount} sessions`);
    }
    for (const session of sessions) {
      if (this.lastSessionId !== null && !(this.lastSessionId < session.id)) {
        throw new SnapshotPartError(`session ${session.id} is not after ${this.lastSessionId}`);
      }
      this.lastSessionId = session.id;
      if (sessionRowBytes(session) > snapshotRowBytesMax) {
        throw new SnapshotPartError(
          `session ${session.id} is larger than a row may be (${snapshotRowBytesMax} bytes)`,
        );
      }
      if (this.referenced.has(session.id)) this.referenced.set(session.id, true);
    }
    this.sessionsSeen += sessions.length;
    if (this.options.keepRows && sessions.length > 0) this.sessionChunks.push([...sessions]);
  }

  private requireHeader(): PartsHeader {
    const header = this.header;
    if (header === null) throw new SnapshotPartError('rows before the header');
    return header;
  }
}

/** Decodes a part that must be exactly one msgpack value. */
function onlyValue(part: Uint8Array, where: string): unknown {
  let values: unknown[];
  try {
    values = packr.unpackMultiple(Buffer.from(part.buffer, part.byteOffset, part.byteLength)) ?? [];
  } catch {
    // The decoder's own message is left out: refusals are replicated, and must not depend on its version.
    throw new SnapshotPartError(`${where} is not valid msgpack`);
  }
  if (values.length !== 1) throw new SnapshotPartError(`${where} holds ${values.length} values, not one`);
  return values[0];
}

/**
 * A user snapshot's header: [version, appliedIndex, kvIndex, sessionIndex, keys, sessions]
 * (version 2), then autopilot and a restore in progress (versions 3 and 4), which a user
 * snapshot never carries.
 */
function partsHeaderFromWire(value: unknown): PartsHeader {
  if (!Array.isArray(value)) throw new SnapshotPartError('part 0 is not a snapshot header');
  const [version, appliedIndex, kvIndex, sessionIndex, keys, sessionCount, autopilot, staging] =
    value as unknown[];
  const known =
    (version === 2 && value.length === 6) || ((version === 3 || version === 4) && value.length === 8);
  if (!known) {
    throw new SnapshotPartError(`unknown snapshot version ${String(version)} (header of ${value.length})`);
  }
  if (staging !== undefined && staging !== null) {
    throw new SnapshotPartError('the snapshot carries a restore in progress');
  }
  return {
    appliedIndex: natural(appliedIndex, 'appliedIndex'),
    kvIndex: natural(kvIndex, 'kvIndex'),
    sessionIndex: natural(sessionIndex, 'sessionIndex'),
    keys: natural(keys, 'the key count'),
    sessionCount: natural(sessionCount, 'the session count'),
    autopilot: autopilot === undefined || autopilot === null ? null : autopilotFromWire(autopilot),
  };
}
