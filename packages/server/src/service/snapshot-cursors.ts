import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { assert } from '@conclave/raft';
import { ConclaveError } from '../errors.js';
import type { GroupId } from '../host/ports.js';

/** What a cursor reads: the FSM's parts over one copy-on-write view (fsm.openSnapshotParts()). */
export interface SnapshotPartSource {
  /** Encodes the next part (header first, then row chunks); null once every part was given. */
  next(): Uint8Array | null;
}

export interface CursorLimits {
  /** Snapshot cursors open on this server at once; one more is refused with OVERLOADED. */
  readonly cursorsMax: number;
  /** A cursor not read for this long is closed, and its view of the state released (ms). */
  readonly cursorIdleMs: number;
  /** The most part bytes one read answers with, whatever the caller asks (bytes). */
  readonly readBytesMax: number;
  /** Parts encoded in one event-loop turn: encoding one takes a few ms (parts). */
  readonly partsPerTurnMax: number;
}

export const defaultCursorLimits: CursorLimits = {
  cursorsMax: 16,
  cursorIdleMs: 60_000,
  readBytesMax: 4 * 1024 * 1024,
  partsPerTurnMax: 2,
};

export interface CursorRead {
  readonly parts: Uint8Array[];
  /** Every part was read: the cursor is closed. */
  readonly done: boolean;
}

interface Cursor {
  readonly groupId: GroupId;
  readonly source: SnapshotPartSource;
  /** A part encoded by an earlier read that did not fit in its bytesMax: sent first next time. */
  pending: Uint8Array | null;
  lastUsedMs: number;
  reading: boolean;
}

/**
 * The snapshot part readers open on this server (`snapshot-open`, `-read`, `-close` group
 * calls). Each holds a copy-on-write view of its group's state, which keeps old versions of
 * the tables alive, so their number is bounded and an idle one is closed: by a lazy check
 * on every use (against the injected clock) and by an unref'd sweep, so an abandoned save
 * does not pin memory until the next one.
 */
export class SnapshotCursors {
  private readonly cursors = new Map<string, Cursor>();
  private readonly limits: CursorLimits;
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: { limits?: Partial<CursorLimits>; now?: () => number } = {}) {
    this.limits = { ...defaultCursorLimits, ...options.limits };
    this.now = options.now ?? (() => Date.now());
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConclaveError({ code: 'CONFIG_INVALID', message: `${name} must be a positive integer` });
      }
    }
  }

  get openCount(): number {
    return this.cursors.size;
  }

  get readBytesMax(): number {
    return this.limits.readBytesMax;
  }

  /**
   * Opens a cursor over the source `openSource` makes, called only once there is room:
   * taking a view is O(rows) work that a refused open should not pay.
   */
  open<S extends SnapshotPartSource>(options: {
    groupId: GroupId;
    openSource: () => S;
  }): {
    cursorId: string;
    source: S;
  } {
    if (this.closed) {
      throw new ConclaveError({ code: 'SHUTTING_DOWN', message: 'this server is stopping' });
    }
    this.sweep();
    if (this.cursors.size >= this.limits.cursorsMax) {
      throw new ConclaveError({
        code: 'OVERLOADED',
        message: `${this.cursors.size} snapshot saves are already open on this server (cursorsMax); retry once one finishes`,
      });
    }
    const cursorId = randomUUID();
    const source = options.openSource();
    this.cursors.set(cursorId, {
      groupId: options.groupId,
      source,
      pending: null,
      lastUsedMs: this.now(),
      reading: false,
    });
    this.startSweeper();
    return { cursorId, source };
  }

  /**
   * The next parts, totalling at most bytesMax (capped at readBytesMax) but at least one
   * while any is left. A few parts are encoded per event-loop turn, so a read of many parts
   * never holds the loop. The cursor closes itself once it has given its last part.
   */
  async read(options: { groupId: GroupId; cursorId: string; bytesMax: number }): Promise<CursorRead> {
    const cursor = this.take(options);
    if (cursor.reading) {
      throw new ConclaveError({
        code: 'BAD_REQUEST',
        message: `snapshot cursor ${options.cursorId} is already being read: read it one call at a time`,
      });
    }
    cursor.reading = true;
    try {
      const result = await this.fill({ cursor, cursorId: options.cursorId, bytesMax: options.bytesMax });
      if (result.done) this.cursors.delete(options.cursorId);
      return result;
    } finally {
      cursor.reading = false;
      cursor.lastUsedMs = this.now();
    }
  }

  private async fill(options: { cursor: Cursor; cursorId: string; bytesMax: number }): Promise<CursorRead> {
    const { cursor, cursorId } = options;
    const bytesMax = Math.min(Math.max(options.bytesMax, 1), this.limits.readBytesMax);
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (let encoded = 0; bytes < bytesMax; encoded++) {
      if (encoded > 0 && encoded % this.limits.partsPerTurnMax === 0) {
        await nextTurn();
        // Closed meanwhile (by the reader, an idle sweep or the server stopping).
        if (this.cursors.get(cursorId) !== cursor) throw gone(cursorId);
      }
      const part = cursor.pending ?? cursor.source.next();
      cursor.pending = null;
      if (part === null) return { parts, done: true };
      assert(part.byteLength > 0, 'a snapshot part is never empty');
      if (parts.length > 0 && bytes + part.byteLength > bytesMax) {
        // Already encoded: keep it for the next read rather than encode it twice.
        cursor.pending = part;
        break;
      }
      parts.push(part);
      bytes += part.byteLength;
    }
    return { parts, done: false };
  }

  /** Idempotent: closing a cursor that is gone (done, idle, never opened) is not an error. */
  close(cursorId: string): void {
    this.cursors.delete(cursorId);
    if (this.cursors.size === 0) this.stopSweeper();
  }

  /** The server is stopping: release every view and refuse new cursors. */
  closeAll(): void {
    this.closed = true;
    this.cursors.clear();
    this.stopSweeper();
  }

  /** Closes every cursor idle past cursorIdleMs; a cursor being read is not idle. */
  sweep(): void {
    const now = this.now();
    for (const [cursorId, cursor] of this.cursors) {
      if (!cursor.reading && now - cursor.lastUsedMs > this.limits.cursorIdleMs)
        this.cursors.delete(cursorId);
    }
    if (this.cursors.size === 0) this.stopSweeper();
  }

  private take(options: { groupId: GroupId; cursorId: string }): Cursor {
    this.sweep();
    const cursor = this.cursors.get(options.cursorId);
    if (cursor === undefined || cursor.groupId !== options.groupId) throw gone(options.cursorId);
    return cursor;
  }

  private startSweeper(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => this.sweep(), this.limits.cursorIdleMs);
    // The sweep must not keep a stopping process alive.
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper === null) return;
    clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

function gone(cursorId: string): ConclaveError {
  return new ConclaveError({
    code: 'SNAPSHOT_CURSOR_GONE',
    message: `snapshot cursor ${cursorId} is not open on this server (it was idle too long, finished, or the server restarted)`,
  });
}
