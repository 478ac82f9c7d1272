import { assert } from '../errors.js';
import type { ReadState } from '../types.js';

interface PendingRead {
  readonly context: Uint8Array;
  /** The commit index the read must wait for; null until the leader commits in its term. */
  index: number | null;
  /** The first heartbeat round started after the read arrived. */
  readonly round: number;
}

/**
 * ReadIndex requests waiting for a heartbeat round that a quorum acknowledges. Reads that
 * arrive between two rounds share the next one, so a burst of reads costs one round trip.
 */
export class ReadOnly {
  private pending: PendingRead[] = [];

  constructor(private readonly pendingMax: number) {}

  get size(): number {
    return this.pending.length;
  }

  isFull(): boolean {
    return this.pending.length >= this.pendingMax;
  }

  add(options: { context: Uint8Array; index: number | null; round: number }): void {
    assert(!this.isFull(), 'ReadOnly.add past readIndexPendingMax');
    const last = this.pending[this.pending.length - 1];
    assert(last === undefined || last.round <= options.round, 'read rounds must not go backwards');
    this.pending.push({ ...options });
  }

  /** The leader committed its first entry of the term: reads waiting on it now know their index. */
  assignIndex(committed: number): void {
    for (const read of this.pending) if (read.index === null) read.index = committed;
  }

  /** Whether some read waits for a round at or after `round`. */
  needsRound(round: number): boolean {
    const last = this.pending[this.pending.length - 1];
    return last !== undefined && last.round >= round;
  }

  /** Release, in arrival order, every read whose round a quorum has acknowledged. */
  release(confirmedRound: number): ReadState[] {
    const out: ReadState[] = [];
    let released = 0;
    for (const read of this.pending) {
      if (read.round > confirmedRound || read.index === null) break;
      out.push({ index: read.index, context: read.context });
      released++;
    }
    if (released > 0) this.pending = this.pending.slice(released);
    return out;
  }

  /** Leadership was lost: hand back every waiting read so callers can retry elsewhere. */
  drain(): Uint8Array[] {
    const contexts = this.pending.map((read) => read.context);
    this.pending = [];
    return contexts;
  }
}
