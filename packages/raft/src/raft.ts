import { applyConfChange, decodeConfChange } from './confchange/confchange.js';
import type { RaftConfig } from './config.js';
import { assert, RaftError, RaftErrorCode } from './errors.js';
import { RaftLog } from './log/raft-log.js';
import { majorityActive, majorityValue, majorityVoteResult } from './quorum/majority.js';
import { ReadOnly } from './read/read-only.js';
import { stepCandidate } from './roles/candidate.js';
import { stepFollower } from './roles/follower.js';
import { broadcastAppend, broadcastHeartbeat, maybeCommit, sendAppend, stepLeader } from './roles/leader.js';
import type { LogStorage } from './storage.js';
import { Progress } from './tracker/progress.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  Role,
  type SnapshotMetadata,
  type SoftState,
  type VoteMessage,
} from './types.js';

export type CampaignKind = 'preElection' | 'election' | 'transfer';
type StepFunction = (raft: Raft, message: Message) => void;

/** Messages from these types prove the sender leads the message's term. */
const leaderMessageTypes: ReadonlySet<Message['type']> = new Set(['app', 'heartbeat', 'snap']);
/**
 * Messages that may leave before the Ready that produced them is durable: what a leader
 * sends (its term and vote are durable since its campaign) and answers that promise
 * nothing about the log. Every other message waits for persistence.
 */
const immediateMessageTypes: ReadonlySet<Message['type']> = new Set([
  'app',
  'heartbeat',
  'snap',
  'timeoutNow',
  'heartbeatResp',
  'preVote',
  'preVoteResp',
  'snapResp',
]);

/** The most heartbeat rounds remembered for extending the lease; older ones are forgotten. */
const roundsTrackedMax = 256;

/** An InstallSnapshot being assembled from chunks. */
export interface SnapshotAssembly {
  readonly metadata: SnapshotMetadata;
  readonly chunks: Uint8Array[];
  bytes: number;
}

/**
 * The Raft state machine. It holds no I/O: inputs arrive through tick(), step() and the
 * propose family; outputs collect in `messages`, `readStates` and the log's unstable
 * tail until RawNode packages them into a Ready. The per-role behaviour lives in
 * roles/, swapped in as `stepRole` and `tickRole`.
 */
export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;

  term = 0;
  vote: NodeId | null = null;
  role: Role = Role.Follower;
  leaderId: NodeId | null = null;

  confState: ConfState;
  /** The index the membership in `confState` took effect at. */
  confIndex: number;
  /** Membership changes since the last snapshot, to describe any snapshot's membership. */
  confHistory: { index: number; confState: ConfState }[];
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  /** Messages for the next Ready, split by whether they must wait for persistence. */
  messages: Message[] = [];
  messagesAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  droppedReads: { context: Uint8Array; error: RaftError }[] = [];

  /** Ticks since this node started: the local clock, in ticks. */
  ticks = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeoutTicks = 0;
  /**
   * Until one election timeout has passed since start, act as if a leader was heard: a
   * node that crashed may have promised a leader's lease just before, and must keep it.
   * A node at term 0 has never heard of any leader, so it has no promise to keep.
   */
  startupQuiet = false;

  leadTransferee: NodeId | null = null;
  /** Once TimeoutNow is out, another node may lead at any moment: no more lease reads. */
  timeoutNowSent = false;
  pendingConfIndex = 0;
  uncommittedBytes = 0;

  readonly readOnly: ReadOnly;
  /** The current heartbeat round; followers echo it to confirm leadership. */
  round = 0;
  confirmedRound = 0;
  roundStarts: { round: number; tick: number }[] = [];
  readRoundWanted = false;
  /** Entries were proposed since the last Ready: replicate them when the next one is built. */
  appendBroadcastWanted = false;
  /** Lease reads are safe while `ticks < leaseEndTick`. */
  leaseEndTick = 0;

  snapshotAssembly: SnapshotAssembly | null = null;

  stepRole: StepFunction = stepFollower;
  tickRole: () => void = () => this.tickElection();

  constructor(options: { config: RaftConfig; storage: LogStorage }) {
    const { config, storage } = options;
    this.id = config.id;
    this.config = config;
    const { hardState, confState } = storage.initialState();
    this.log = new RaftLog(storage, { committed: hardState.commit, applied: config.applied });
    const snapshotIndex = storage.firstIndex() - 1;
    this.confState = confState;
    this.confIndex = snapshotIndex;
    this.confHistory = [{ index: snapshotIndex, confState }];
    this.readOnly = new ReadOnly(config.readIndexPendingMax);
    this.replayAppliedConfChanges();
    this.syncProgress();
    this.becomeFollower({ term: hardState.term, leaderId: null });
    this.vote = hardState.vote;
    this.startupQuiet = hardState.term > 0;
  }

  // ---- state ----

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role };
  }

  isVoter(id: NodeId): boolean {
    return this.confState.voters.includes(id);
  }

  /**
   * Whether this node knows any membership. A node started with empty storage to join a
   * group knows none until a snapshot tells it: replaying the log alone would miss the
   * membership the group was bootstrapped with.
   */
  knowsMembership(): boolean {
    return this.confState.voters.length > 0 || this.confState.learners.length > 0;
  }

  /** Whether this node may become leader: it must be a voter. */
  promotable(): boolean {
    return this.isVoter(this.id);
  }

  selfProgress(): Progress {
    const pr = this.progress.get(this.id);
    assert(pr !== undefined, 'the leader has no progress for itself');
    return pr;
  }

  committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ---- output ----

  send(message: Message): void {
    assert(message.to !== this.id, () => `${this.id} sending ${message.type} to itself`);
    if (immediateMessageTypes.has(message.type)) this.messages.push(message);
    else this.messagesAfterPersist.push(message);
  }

  // ---- role transitions ----

  becomeFollower(options: { term: number; leaderId: NodeId | null }): void {
    this.reset({ term: options.term, leaderId: options.leaderId });
    this.role = Role.Follower;
    this.stepRole = stepFollower;
    this.tickRole = () => this.tickElection();
  }

  becomePreCandidate(): void {
    assert(this.role !== Role.Leader, 'a leader cannot become a pre-candidate');
    // A PreVote round changes no term and no vote: it only asks whether an election could win.
    this.role = Role.PreCandidate;
    this.leaderId = null;
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.stepRole = stepCandidate;
    this.tickRole = () => this.tickElection();
  }

  becomeCandidate(): void {
    assert(this.role !== Role.Leader, 'a leader cannot become a candidate');
    this.reset({ term: this.term + 1, leaderId: null });
    this.vote = this.id;
    this.role = Role.Candidate;
    this.stepRole = stepCandidate;
    this.tickRole = () => this.tickElection();
  }

  becomeLeader(): void {
    assert(this.role === Role.Candidate, () => `${this.id} becoming leader from ${this.role}`);
    this.reset({ term: this.term, leaderId: this.id });
    this.role = Role.Leader;
    this.stepRole = stepLeader;
    this.tickRole = () => this.tickHeartbeat();
    this.selfProgress().maybeUpdate(this.log.lastStableIndex());
    this.selfProgress().becomeReplicate();
    // Every entry before the no-op may carry an unapplied membership change: none may
    // be proposed until the no-op, an entry of this term, has been applied.
    this.pendingConfIndex = this.appendEntries([{ type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  /** Enter `term` under `leaderId`, forgetting everything that belonged to the previous role. */
  private reset(options: { term: number; leaderId: NodeId | null }): void {
    const { term } = options;
    assert(term >= this.term, () => `term went backwards: ${this.term} -> ${term}`);
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    // Set first, so that reads dropped below name the leader to retry with.
    this.leaderId = options.leaderId;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.timeoutNowSent = false;
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.round = 0;
    this.confirmedRound = 0;
    this.roundStarts = [];
    this.readRoundWanted = false;
    this.appendBroadcastWanted = false;
    this.leaseEndTick = 0;
    for (const context of this.readOnly.drain()) {
      this.droppedReads.push({ context, error: this.notLeaderError() });
    }
    this.resetProgress();
  }

  private resetProgress(): void {
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.progress) {
      const fresh = new Progress({
        next,
        inflightMessagesMax: this.config.inflightMessagesMax,
        isLearner: pr.isLearner,
      });
      // A new leader gives every member a full election timeout to answer.
      fresh.activeTick = this.ticks;
      this.progress.set(id, fresh);
    }
  }

  private resetRandomizedElectionTimeout(): void {
    const base = this.config.electionTimeoutTicks;
    this.randomizedElectionTimeoutTicks = base + this.config.prng.nextInt(base);
  }

  // ---- time ----

  tick(): void {
    this.ticks++;
    this.tickRole();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTimeoutTicks) this.startupQuiet = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeoutTicks) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    // Checked every tick, so a leader cut off from a quorum steps down one election timeout
    // after it last heard from one, not up to two timeouts later.
    if (this.config.checkQuorum && !this.quorumActive()) {
      this.becomeFollower({ term: this.term, leaderId: null });
      return;
    }
    if (this.electionElapsed >= this.config.electionTimeoutTicks) {
      this.electionElapsed = 0;
      for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      // A transfer that has not finished within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      broadcastHeartbeat(this);
    }
  }

  /** Whether this leader heard from a quorum within the last election timeout. */
  private quorumActive(): boolean {
    return majorityActive(this.confState.voters, (id) => {
      const pr = this.progress.get(id);
      return (
        id === this.id || (pr !== undefined && this.ticks - pr.activeTick < this.config.electionTimeoutTicks)
      );
    });
  }

  // ---- elections ----

  campaign(kind: CampaignKind): void {
    // A leader has nothing to campaign for (RawNode.campaign() may be called on any node).
    if (this.role === Role.Leader || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return;
    if (kind === 'preElection') this.becomePreCandidate();
    else this.becomeCandidate();
    const type = kind === 'preElection' ? 'preVote' : 'vote';
    const term = kind === 'preElection' ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.recordVoteOutcome()) return;
    for (const id of this.confState.voters) {
      if (id === this.id) continue;
      this.send({
        type,
        from: this.id,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        transfer: kind === 'transfer',
      });
    }
  }

  /** Act on the votes so far. Returns true when the election is decided. */
  recordVoteOutcome(): boolean {
    const result = majorityVoteResult(this.confState.voters, this.votes);
    if (result === 'won') {
      if (this.role === Role.PreCandidate) this.campaign('election');
      else {
        this.becomeLeader();
        broadcastAppend(this);
      }
    } else if (result === 'lost') {
      this.becomeFollower({ term: this.term, leaderId: null });
    }
    return result !== 'pending';
  }

  /** Whether a committed membership change has not been applied yet. */
  hasUnappliedConfChange(): boolean {
    let lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    while (lo < hi) {
      const entries = this.log.slice({ lo, hi, bytesMax: this.config.applyBytesMax });
      if (entries === null || entries.length === 0) return false;
      for (const entry of entries) if (entry.type === EntryType.ConfChange) return true;
      lo += entries.length;
    }
    return false;
  }

  // ---- input ----

  step(message: Message): void {
    assert(message.to === this.id, () => `${this.id} received a message for ${message.to}`);
    if (message.term > this.term) {
      if (!this.acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.answerStaleTerm(message);
      return;
    }
    if (message.type === 'vote' || message.type === 'preVote') {
      this.handleVoteRequest(message);
      return;
    }
    this.stepRole(this, message);
  }

  /** Whether this node is within a leader's lease and must not help elect another. */
  inLease(): boolean {
    return (
      this.config.checkQuorum &&
      (this.leaderId !== null || this.startupQuiet) &&
      this.electionElapsed < this.config.electionTimeoutTicks
    );
  }

  /** A message from a higher term. Returns false when it must be ignored. */
  private acceptHigherTerm(message: Message): boolean {
    if ((message.type === 'vote' || message.type === 'preVote') && !message.transfer && this.inLease()) {
      // A node that heard from a live leader recently ignores campaigns (CheckQuorum's
      // lease): this keeps a partitioned node from deposing a healthy leader.
      return false;
    }
    if (message.type === 'preVote') return true;
    if (message.type === 'preVoteResp' && !message.reject) return true;
    this.becomeFollower({
      term: message.term,
      leaderId: leaderMessageTypes.has(message.type) ? message.from : null,
    });
    return true;
  }

  private answerStaleTerm(message: Message): void {
    if ((this.config.checkQuorum || this.config.preVote) && leaderMessageTypes.has(message.type)) {
      // Tell a stale leader about our term, or with PreVote and CheckQuorum it may never learn
      // it is deposed: we would never campaign against it at a higher term.
      this.send({
        type: 'appResp',
        from: this.id,
        to: message.from,
        term: this.term,
        index: 0,
        reject: false,
        hintIndex: 0,
        hintTerm: 0,
      });
    } else if (message.type === 'preVote') {
      this.send({ type: 'preVoteResp', from: this.id, to: message.from, term: this.term, reject: true });
    }
  }

  private handleVoteRequest(message: VoteMessage): void {
    const canVote =
      this.vote === message.from ||
      (this.vote === null && this.leaderId === null) ||
      (message.type === 'preVote' && message.term > this.term);
    const responseType = message.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (canVote && this.log.isUpToDate({ lastIndex: message.index, lastTerm: message.logTerm })) {
      this.send({ type: responseType, from: this.id, to: message.from, term: message.term, reject: false });
      if (message.type === 'vote') {
        assert(this.vote === null || this.vote === message.from, () => {
          return `${this.id} voting twice in term ${this.term}: ${this.vote} then ${message.from}`;
        });
        this.electionElapsed = 0;
        this.vote = message.from;
      }
      return;
    }
    this.send({ type: responseType, from: this.id, to: message.from, term: this.term, reject: true });
  }

  // ---- proposals ----

  notLeaderError(): RaftError {
    const known = this.leaderId !== null && this.leaderId !== this.id ? this.leaderId : null;
    return new RaftError({
      code: RaftErrorCode.NotLeader,
      message:
        known !== null ? `not the leader; the leader is ${known}` : 'not the leader, and no leader is known',
      leaderId: known,
    });
  }

  /** Append entries as leader; returns the index of the last one. */
  appendEntries(entries: readonly { type: EntryType; data: Uint8Array }[]): number {
    assert(this.role === Role.Leader, 'only a leader appends its own entries');
    let index = this.log.lastIndex();
    const full: Entry[] = entries.map((entry) => ({
      term: this.term,
      index: ++index,
      type: entry.type,
      data: entry.data,
    }));
    for (const entry of full) this.uncommittedBytes += entry.data.byteLength;
    return this.log.append(full);
  }

  // ---- persistence and apply feedback from RawNode ----

  /** Entries up to (index, term) are durable. The leader's own acknowledgement counts only now. */
  onEntriesPersisted(options: { index: number; term: number }): void {
    this.log.unstable.stableTo(options);
    if (this.role !== Role.Leader || !this.log.matchTerm(options.index, options.term)) return;
    if (this.selfProgress().maybeUpdate(options.index) && maybeCommit(this)) broadcastAppend(this);
  }

  /** Apply a committed membership change the caller has just been handed. */
  applyConfChangeEntry(entry: Entry): void {
    assert(entry.type === EntryType.ConfChange, 'applyConfChangeEntry on a normal entry');
    // A snapshot restored since already reflects this change.
    if (entry.index <= this.confIndex) return;
    this.confState = applyConfChange(this.confState, decodeConfChange(entry.data));
    this.confIndex = entry.index;
    this.confHistory.push({ index: entry.index, confState: this.confState });
    this.onConfChanged();
  }

  /** Install the membership carried by a snapshot. */
  restoreConf(options: { index: number; confState: ConfState }): void {
    this.confState = options.confState;
    this.confIndex = options.index;
    this.confHistory = [{ index: options.index, confState: options.confState }];
    this.syncProgress();
  }

  /** The membership in force at `index`, which must not precede the oldest snapshot kept. */
  confStateAt(index: number): ConfState {
    let found: ConfState | null = null;
    for (const item of this.confHistory) if (item.index <= index) found = item.confState;
    assert(found !== null, () => `no membership known at index ${index}`);
    return found;
  }

  /** Forget membership history older than what describes `index`. */
  pruneConfHistory(index: number): void {
    let keepFrom = 0;
    this.confHistory.forEach((item, i) => {
      if (item.index <= index) keepFrom = i;
    });
    this.confHistory = this.confHistory.slice(keepFrom);
  }

  private onConfChanged(): void {
    this.syncProgress();
    if (this.role !== Role.Leader) return;
    if (!this.promotable()) {
      // A leader removed or demoted by a committed change steps down; the rest elect anew.
      this.becomeFollower({ term: this.term, leaderId: null });
      return;
    }
    if (this.leadTransferee !== null && !this.isVoter(this.leadTransferee)) this.leadTransferee = null;
    if (maybeCommit(this)) broadcastAppend(this);
    else {
      for (const id of this.progress.keys())
        if (id !== this.id) sendAppend(this, { to: id, sendIfEmpty: false });
    }
    this.advanceReadRounds();
  }

  private syncProgress(): void {
    const members = new Set([...this.confState.voters, ...this.confState.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    const next = this.log.lastIndex() + 1;
    for (const id of members) {
      const isLearner = this.confState.learners.includes(id);
      const pr = this.progress.get(id);
      if (pr !== undefined) pr.isLearner = isLearner;
      else {
        const fresh = new Progress({ next, inflightMessagesMax: this.config.inflightMessagesMax, isLearner });
        fresh.activeTick = this.ticks;
        if (id === this.id && this.role === Role.Leader) {
          fresh.maybeUpdate(this.log.lastStableIndex());
          fresh.becomeReplicate();
        }
        this.progress.set(id, fresh);
      }
    }
  }

  private replayAppliedConfChanges(): void {
    let lo = this.confIndex + 1;
    const hi = this.log.applied + 1;
    while (lo < hi) {
      const entries = this.log.slice({ lo, hi, bytesMax: this.config.applyBytesMax });
      assert(entries !== null && entries.length > 0, 'applied entries missing from the log on start');
      for (const entry of entries) {
        if (entry.type !== EntryType.ConfChange) continue;
        this.confState = applyConfChange(this.confState, decodeConfChange(entry.data));
        this.confIndex = entry.index;
        this.confHistory.push({ index: entry.index, confState: this.confState });
      }
      lo += entries.length;
    }
  }

  // ---- reads ----

  /**
   * Send what was batched since the last Ready: one AppendEntries per follower for all new
   * proposals, and one heartbeat round for all reads that arrived.
   */
  flushBatched(): void {
    if (this.appendBroadcastWanted) {
      this.appendBroadcastWanted = false;
      if (this.role === Role.Leader) broadcastAppend(this);
    }
    if (this.readRoundWanted) {
      this.readRoundWanted = false;
      if (this.role === Role.Leader) broadcastHeartbeat(this);
    }
  }

  leaseValid(): boolean {
    return (
      this.config.checkQuorum &&
      this.role === Role.Leader &&
      this.leadTransferee === null &&
      !this.timeoutNowSent &&
      this.ticks < this.leaseEndTick
    );
  }

  /** Recompute the round a quorum confirmed, extend the lease and release reads. */
  advanceReadRounds(): void {
    if (this.role !== Role.Leader) return;
    const confirmed = majorityValue(this.confState.voters, (id) =>
      id === this.id ? this.round : (this.progress.get(id)?.roundAcked ?? 0),
    );
    if (confirmed > this.confirmedRound) {
      this.confirmedRound = confirmed;
      while (this.roundStarts.length > 0 && (this.roundStarts[0]?.round ?? confirmed) < confirmed) {
        this.roundStarts.shift();
      }
      const start = this.roundStarts[0];
      if (start !== undefined && start.round === confirmed) {
        // See docs/architecture.md, "Lease reads": one tick is lost to granularity on each side.
        const end = start.tick + this.config.electionTimeoutTicks - 1 - this.config.leaseClockDriftTicks;
        this.leaseEndTick = Math.max(this.leaseEndTick, end);
      }
    }
    if (this.committedInTerm()) {
      for (const read of this.readOnly.release(this.confirmedRound)) this.readStates.push(read);
    }
  }

  recordRoundStart(): void {
    this.roundStarts.push({ round: this.round, tick: this.ticks });
    if (this.roundStarts.length > roundsTrackedMax) this.roundStarts.shift();
  }
}
