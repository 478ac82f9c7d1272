import { assert } from '../errors.js';
import type { Snapshot } from '../types.js';
import { Inflights } from './inflights.js';

/**
 * How the leader replicates to one follower:
 * - probe: one AppendEntries at a time until the follower's match index is found;
 * - replicate: optimistic pipelining, bounded by the inflight window;
 * - snapshot: the follower needs entries the leader has compacted; chunks stream instead.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe: an AppendEntries is out and unanswered, so hold further ones. */
  probeSent = false;
  /** Heard from since the last CheckQuorum. */
  recentActive = false;
  /** The leader's tick when it last heard from this member (CheckQuorum's sliding window). */
  activeTick = 0;
  /**
   * Heard from since this progress began. Until then activeTick is only the grace a new
   * leader gives every member, so it says nothing about whether the member is up.
   */
  heard = false;
  /** The highest heartbeat round this follower has acknowledged. */
  roundAcked = 0;
  readonly inflights: Inflights;
  /** In snapshot: the snapshot being streamed and how far the follower holds it. */
  snapshot: Snapshot | null = null;
  snapshotOffset = 0;
  /** The tick a snapshot chunk was sent and not yet acknowledged, or null. */
  snapshotChunkSentTick: number | null = null;

  constructor(options: { next: number; inflightMessagesMax: number; isLearner: boolean }) {
    this.next = options.next;
    this.inflights = new Inflights(options.inflightMessagesMax);
    this.isLearner = options.isLearner;
  }

  isLearner: boolean;

  becomeProbe(): void {
    this.resetState('probe');
    this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState('snapshot');
    this.snapshot = snapshot;
    this.snapshotOffset = 0;
  }

  /** Record an acknowledgement up to `index`. Returns whether it told us anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the AppendEntries whose previous index was `rejected`. `matchHint` is
   * the highest index that may match, from the follower's conflict hint. Returns false
   * for a stale rejection that must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Account for an AppendEntries carrying entries up to `lastIndex` (or none). */
  sentEntries(options: { entryCount: number; lastIndex: number }): void {
    if (this.state === 'replicate') {
      if (options.entryCount > 0) {
        assert(options.lastIndex >= this.next, 'replicate: sent entries behind next');
        this.next = options.lastIndex + 1;
        this.inflights.add(options.lastIndex);
      }
      return;
    }
    assert(this.state === 'probe', 'sentEntries in snapshot state');
    this.probeSent = true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.isFull();
      case 'snapshot':
        return true;
    }
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.snapshot = null;
    this.snapshotOffset = 0;
    this.snapshotChunkSentTick = null;
    this.inflights.reset();
  }
}
