import { type RaftConfigInput, resolveConfig } from './config.js';
import { assert, RaftError, RaftErrorCode } from './errors.js';
import { Raft } from './raft.js';
import {
  type ProposeResult,
  propose,
  proposeConfChange,
  type RaftResult,
  type ReadMode,
  readIndex,
  transferLeader,
} from './roles/leader.js';
import type { LogStorage } from './storage.js';
import type { ProgressState } from './tracker/progress.js';
import {
  type ConfChange,
  type ConfState,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
} from './types.js';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  /**
   * Ticks since the leader last heard from it; null if it has not since this leader's term
   * began (or since it joined). Unlike recentActive, which is cleared every election timeout,
   * this never reads as silence a member that answered a tick ago.
   */
  readonly sinceHeardTicks: number | null;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly role: Role;
  readonly leaderId: NodeId | null;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId | null;
  /**
   * Ticks since this node last heard from a leader (a follower) or since its last election
   * timer reset (other roles): how stale a follower's reads may be.
   */
  readonly electionElapsedTicks: number;
  /** Per member, as the leader sees them; null on any other role. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
}

interface InFlightReady {
  readonly lastEntry: { index: number; term: number } | null;
  readonly snapshotIndex: number | null;
  readonly committedEntries: Ready['committedEntries'];
  readonly hardState: HardState;
  readonly softState: SoftState;
}

/** A Ready-shaped value plus the reads that failed because this node lost leadership. */
export interface NodeReady extends Ready {
  readonly droppedReads: readonly { readonly context: Uint8Array; readonly error: RaftError }[];
}

/**
 * The face of the Raft core. Inputs: tick(), step(), propose(), proposeConfChange(),
 * transferLeader(), readIndex(), campaign(). Output: ready(), whose work the caller does
 * before calling advance(). Two RawNodes fed the same inputs produce the same outputs.
 */
export class RawNode {
  private readonly raft: Raft;
  private previousHardState: HardState;
  private previousSoftState: SoftState;
  private inFlight: InFlightReady | null = null;

  constructor(options: { config: RaftConfigInput; storage: LogStorage }) {
    this.raft = new Raft({ config: resolveConfig(options.config), storage: options.storage });
    this.previousHardState = this.raft.hardState();
    this.previousSoftState = this.raft.softState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  /** Start an election now (tests and operators); a no-op for a node that may not lead. */
  campaign(): void {
    this.raft.campaign(this.raft.config.preVote ? 'preElection' : 'election');
  }

  propose(data: Uint8Array): ProposeResult {
    return propose(this.raft, data);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return proposeConfChange(this.raft, change);
  }

  transferLeader(to: NodeId): RaftResult {
    return transferLeader(this.raft, to);
  }

  /**
   * Ask for a linearizable read. The ReadState with `context` arrives in a later Ready;
   * serve the read once the state machine has applied its index. `lease` answers at once
   * while the leader's lease holds and falls back to a quorum round otherwise.
   */
  readIndex(options: { context: Uint8Array; mode: ReadMode }): RaftResult {
    return readIndex(this.raft, options);
  }

  hasReady(): boolean {
    const raft = this.raft;
    return (
      raft.log.unstable.entries.length > 0 ||
      raft.log.unstable.snapshot !== null ||
      raft.messages.length > 0 ||
      raft.messagesAfterPersist.length > 0 ||
      raft.readStates.length > 0 ||
      raft.droppedReads.length > 0 ||
      raft.readRoundWanted ||
      raft.appendBroadcastWanted ||
      raft.log.hasNextCommittedEntries() ||
      !sameHardState(raft.hardState(), this.previousHardState) ||
      !sameSoftState(raft.softState(), this.previousSoftState)
    );
  }

  ready(): NodeReady {
    assert(this.inFlight === null, 'ready() called again before advance()');
    const raft = this.raft;
    raft.flushBatched();
    const entries = raft.log.unstable.entries.slice();
    const snapshot = raft.log.unstable.snapshot;
    const committedEntries = raft.log.nextCommittedEntries(raft.config.applyBytesMax);
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) raft.log.acceptApplying(lastCommitted.index);
    if (raft.role === 'leader') {
      for (const entry of committedEntries) raft.uncommittedBytes -= entry.data.byteLength;
      raft.uncommittedBytes = Math.max(0, raft.uncommittedBytes);
    }
    const hardState = raft.hardState();
    const softState = raft.softState();
    const hardChanged = !sameHardState(hardState, this.previousHardState);
    const lastEntry = entries[entries.length - 1];
    const ready: NodeReady = {
      softState: sameSoftState(softState, this.previousSoftState) ? null : softState,
      hardState: hardChanged ? hardState : null,
      entries,
      snapshot,
      messages: raft.messages,
      messagesAfterPersist: raft.messagesAfterPersist,
      committedEntries,
      readStates: raft.readStates,
      droppedReads: raft.droppedReads,
      mustSync:
        entries.length > 0 ||
        snapshot !== null ||
        hardState.term !== this.previousHardState.term ||
        hardState.vote !== this.previousHardState.vote,
    };
    raft.messages = [];
    raft.messagesAfterPersist = [];
    raft.readStates = [];
    raft.droppedReads = [];
    this.inFlight = {
      lastEntry: lastEntry === undefined ? null : { index: lastEntry.index, term: lastEntry.term },
      snapshotIndex: snapshot?.metadata.index ?? null,
      committedEntries,
      hardState,
      softState,
    };
    return ready;
  }

  /**
   * The messages that may leave before anything is durable (a Ready's `messages`: a
   * leader's appends and heartbeats, heartbeat responses, pre-votes), taken now, also while
   * a Ready is in flight: a slow fdatasync must not hold a leader's heartbeats past an
   * election timeout. Messages that acknowledge state (append and vote responses) stay for
   * the next Ready, after its write, and so do batched broadcasts (new entries, read
   * rounds): flushed per input, they would go out one entry per append, and a follower
   * that rejects would answer each one (the fast backup's one rejection per term).
   */
  takeMessages(): readonly Message[] {
    const raft = this.raft;
    const messages = raft.messages;
    raft.messages = [];
    return messages;
  }

  /** The caller has done all the work of the last Ready. */
  advance(): void {
    const done = this.inFlight;
    assert(done !== null, 'advance() without a Ready in flight');
    this.inFlight = null;
    const raft = this.raft;
    if (done.snapshotIndex !== null) {
      raft.log.unstable.stableSnapshotTo(done.snapshotIndex);
      if (done.snapshotIndex > raft.log.applied) raft.log.appliedTo(done.snapshotIndex);
    }
    if (done.lastEntry !== null) raft.onEntriesPersisted(done.lastEntry);
    for (const entry of done.committedEntries) {
      if (entry.type === EntryType.ConfChange) raft.applyConfChangeEntry(entry);
    }
    const lastApplied = done.committedEntries[done.committedEntries.length - 1];
    if (lastApplied !== undefined && lastApplied.index > raft.log.applied)
      raft.log.appliedTo(lastApplied.index);
    this.previousHardState = done.hardState;
    this.previousSoftState = done.softState;
  }

  /**
   * Describe a snapshot of the state machine taken at `index` (at most the applied
   * index). The caller stores it and may then compact its log up to `index`.
   */
  createSnapshot(options: { index: number; data: Uint8Array }): Snapshot {
    const raft = this.raft;
    const { index } = options;
    const floor = raft.log.storage.snapshotMetadata().index;
    if (index > raft.log.applied || index < floor) {
      throw new RaftError({
        code: RaftErrorCode.SnapshotOutOfDate,
        message: `cannot snapshot at ${index}: it must lie in [${floor}, applied ${raft.log.applied}]`,
      });
    }
    const term = raft.log.term(index);
    assert(term !== null, () => `no term known at snapshot index ${index}`);
    const confState = raft.confStateAt(index);
    raft.pruneConfHistory(index);
    return { metadata: { index, term, confState }, data: options.data };
  }

  status(): RaftStatus {
    const raft = this.raft;
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (raft.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of raft.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          sinceHeardTicks: pr.heard ? raft.ticks - pr.activeTick : null,
        });
      }
    }
    return {
      id: raft.id,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      role: raft.role,
      leaderId: raft.leaderId,
      confState: raft.confState,
      leadTransferee: raft.leadTransferee,
      electionElapsedTicks: raft.electionElapsed,
      progress,
    };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role;
}
