import { encodeConfChange, validateConfChange } from '../confchange/confchange.js';
import { assert, RaftError, RaftErrorCode } from '../errors.js';
import { majorityValue } from '../quorum/majority.js';
import type { Raft } from '../raft.js';
import type { Progress } from '../tracker/progress.js';
import {
  type AppendResponseMessage,
  type ConfChange,
  EntryType,
  type HeartbeatResponseMessage,
  type Message,
  type NodeId,
  Role,
  type SnapshotResponseMessage,
} from '../types.js';

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; error: RaftError };
export type RaftResult = { ok: true } | { ok: false; error: RaftError };
export type ReadMode = 'quorum' | 'lease';

export function stepLeader(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
      assert(false, () => `two leaders in term ${raft.term}: ${raft.id} and ${message.from}`);
      return;
    case 'appResp':
    case 'heartbeatResp':
    case 'snapResp': {
      const pr = raft.progress.get(message.from);
      if (pr === undefined) return; // no longer a member
      pr.recentActive = true;
      pr.activeTick = raft.ticks;
      pr.heard = true;
      if (message.type === 'appResp') handleAppendResponse(raft, pr, message);
      else if (message.type === 'heartbeatResp') handleHeartbeatResponse(raft, pr, message);
      else handleSnapshotResponse(raft, pr, message);
      return;
    }
    default:
      return; // late votes and stray TimeoutNow mean nothing to a leader
  }
}

// ---- replication ----

/** The leader's commit rule: the majority match index, if it is an entry of this term (Figure 8). */
export function maybeCommit(raft: Raft): boolean {
  const index = majorityValue(raft.confState.voters, (id) => raft.progress.get(id)?.match ?? 0);
  if (index <= raft.log.committed || raft.log.term(index) !== raft.term) return false;
  const firstInTerm = !raft.committedInTerm();
  raft.log.commitTo(index);
  if (firstInTerm) {
    raft.readOnly.assignIndex(raft.log.committed);
    raft.advanceReadRounds();
  }
  return true;
}

export function broadcastAppend(raft: Raft): void {
  for (const id of raft.progress.keys()) if (id !== raft.id) sendAppend(raft, { to: id, sendIfEmpty: true });
}

/**
 * Send the follower what it lacks: entries from its next index within the message
 * limits, or a snapshot when those entries are compacted. Returns whether a message went.
 */
export function sendAppend(raft: Raft, options: { to: NodeId; sendIfEmpty: boolean }): boolean {
  const pr = raft.progress.get(options.to);
  if (pr === undefined || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = raft.log.term(prevIndex);
  const entries = raft.log.entriesFrom({
    lo: pr.next,
    bytesMax: raft.config.messageBytesMax,
    countMax: raft.config.messageEntriesMax,
  });
  if (prevTerm === null || entries === null) {
    startSnapshot(raft, pr, options.to);
    return false;
  }
  if (entries.length === 0 && !options.sendIfEmpty) return false;
  const last = entries[entries.length - 1];
  raft.send({
    type: 'app',
    from: raft.id,
    to: options.to,
    term: raft.term,
    index: prevIndex,
    logTerm: prevTerm,
    entries,
    commit: raft.log.committed,
  });
  pr.sentEntries({ entryCount: entries.length, lastIndex: last?.index ?? prevIndex });
  return true;
}

function handleAppendResponse(raft: Raft, pr: Progress, message: AppendResponseMessage): void {
  if (message.reject) {
    if (pr.state === 'snapshot') {
      // The follower lost or refused the snapshot it was assembling: find its log again
      // from scratch at the next heartbeat, so one that cannot take it is not flooded.
      pr.becomeProbe();
      return;
    }
    let matchHint = message.hintIndex;
    if (message.hintTerm > 0) {
      matchHint = raft.log.findConflictByTerm({ index: message.hintIndex, term: message.hintTerm }).index;
    }
    if (pr.state === 'probe' && message.index === pr.next - 1 && message.index < raft.log.firstIndex()) {
      // Rejected at our snapshot's index, below which we hold nothing: only the snapshot helps.
      startSnapshot(raft, pr, message.from);
      return;
    }
    if (pr.maybeDecrTo(message.index, matchHint)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(raft, { to: message.from, sendIfEmpty: true });
    }
    return;
  }
  const wasPaused = pr.isPaused();
  // An acknowledgement of what we already knew still ends a probe, or a snapshot (of index 0).
  if (!pr.maybeUpdate(message.index) && !(pr.match === message.index && pr.state !== 'replicate')) return;
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot') endSnapshot(raft, pr);
  else if (pr.state === 'replicate') pr.inflights.freeLE(message.index);
  if (maybeCommit(raft)) broadcastAppend(raft);
  else if (wasPaused) sendAppend(raft, { to: message.from, sendIfEmpty: true });
  while (sendAppend(raft, { to: message.from, sendIfEmpty: false })) {
    // Fill the pipeline up to the inflight window.
  }
  if (message.from === raft.leadTransferee && pr.match === raft.log.lastIndex())
    sendTimeoutNow(raft, message.from);
}

/**
 * The follower acknowledged in snapshot state. If our log now reaches back to what it
 * holds, replicate from there. If it holds the snapshot we were sending but we have since
 * compacted past it, probe again: the next send starts a fresh snapshot instead of
 * offering the old one forever.
 */
function endSnapshot(raft: Raft, pr: Progress): void {
  if (pr.match + 1 >= raft.log.firstIndex()) pr.becomeReplicate();
  else if (pr.snapshot !== null && pr.match >= pr.snapshot.metadata.index) pr.becomeProbe();
}

function handleHeartbeatResponse(raft: Raft, pr: Progress, message: HeartbeatResponseMessage): void {
  pr.probeSent = false;
  if (message.round > pr.roundAcked) pr.roundAcked = message.round;
  if (pr.state === 'snapshot') {
    // A chunk unanswered for two heartbeats was probably lost: send it again.
    const sent = pr.snapshotChunkSentTick;
    if (sent !== null && raft.ticks - sent >= 2 * raft.config.heartbeatIntervalTicks) {
      sendSnapshotChunk(raft, pr, message.from);
    }
  } else if (pr.match < raft.log.lastIndex()) {
    // The follower is reachable, but a full window whose messages or acknowledgements were
    // lost would never drain: make room for one message; a reject then finds its log again.
    if (pr.state === 'replicate' && pr.inflights.isFull()) pr.inflights.freeFirstOne();
    sendAppend(raft, { to: message.from, sendIfEmpty: true });
  }
  raft.advanceReadRounds();
}

// ---- snapshots ----

function startSnapshot(raft: Raft, pr: Progress, to: NodeId): void {
  pr.becomeSnapshot(raft.log.snapshot());
  sendSnapshotChunk(raft, pr, to);
}

function sendSnapshotChunk(raft: Raft, pr: Progress, to: NodeId): void {
  const snapshot = pr.snapshot;
  assert(snapshot !== null, 'sending a snapshot chunk without a snapshot');
  const offset = pr.snapshotOffset;
  const end = Math.min(offset + raft.config.messageBytesMax, snapshot.data.byteLength);
  raft.send({
    type: 'snap',
    from: raft.id,
    to,
    term: raft.term,
    metadata: snapshot.metadata,
    offset,
    data: snapshot.data.subarray(offset, end),
    done: end === snapshot.data.byteLength,
  });
  pr.snapshotChunkSentTick = raft.ticks;
}

function handleSnapshotResponse(raft: Raft, pr: Progress, message: SnapshotResponseMessage): void {
  const snapshot = pr.snapshot;
  if (pr.state !== 'snapshot' || snapshot === null || message.index !== snapshot.metadata.index) return;
  // Only progress counts: a duplicated or late acknowledgement must not send chunks twice.
  if (message.offset <= pr.snapshotOffset) return;
  pr.snapshotOffset = message.offset;
  sendSnapshotChunk(raft, pr, message.from);
}

// ---- heartbeats and reads ----

export function broadcastHeartbeat(raft: Raft): void {
  raft.round++;
  raft.heartbeatElapsed = 0;
  raft.recordRoundStart();
  for (const [id, pr] of raft.progress) {
    if (id === raft.id) continue;
    raft.send({
      type: 'heartbeat',
      from: raft.id,
      to: id,
      term: raft.term,
      // A follower may not have the leader's whole log yet: never ask it to commit past what it holds.
      commit: Math.min(pr.match, raft.log.committed),
      round: raft.round,
    });
  }
  raft.advanceReadRounds();
}

export function readIndex(raft: Raft, options: { context: Uint8Array; mode: ReadMode }): RaftResult {
  if (raft.role !== Role.Leader) return { ok: false, error: raft.notLeaderError() };
  if (options.mode === 'lease' && raft.leaseValid() && raft.committedInTerm()) {
    raft.readStates.push({ index: raft.log.committed, context: options.context });
    return { ok: true };
  }
  if (raft.readOnly.isFull()) {
    return fail(
      RaftErrorCode.ReadIndexQueueFull,
      `${raft.readOnly.size} reads already wait for a quorum round`,
    );
  }
  raft.readOnly.add({
    context: options.context,
    index: raft.committedInTerm() ? raft.log.committed : null,
    round: raft.round + 1,
  });
  raft.readRoundWanted = true;
  return { ok: true };
}

// ---- proposals ----

export function propose(raft: Raft, data: Uint8Array): ProposeResult {
  const refusal = refuseProposal(raft);
  if (refusal !== null) return { ok: false, error: refusal };
  if (data.byteLength > raft.config.proposalBytesMax) {
    return fail(
      RaftErrorCode.ProposalTooLarge,
      `proposal of ${data.byteLength} bytes exceeds proposalBytesMax ${raft.config.proposalBytesMax}`,
    );
  }
  if (
    raft.uncommittedBytes > 0 &&
    raft.uncommittedBytes + data.byteLength > raft.config.uncommittedBytesMax
  ) {
    return fail(
      RaftErrorCode.UncommittedBytesExceeded,
      `${raft.uncommittedBytes} bytes await commit; the limit is ${raft.config.uncommittedBytesMax} (uncommittedBytesMax)`,
    );
  }
  const index = raft.appendEntries([{ type: EntryType.Normal, data }]);
  // Proposals between two Readys share one AppendEntries per follower, sent by ready().
  raft.appendBroadcastWanted = true;
  return { ok: true, index, term: raft.term };
}

export function proposeConfChange(raft: Raft, change: ConfChange): ProposeResult {
  const refusal = refuseProposal(raft);
  if (refusal !== null) return { ok: false, error: refusal };
  if (raft.pendingConfIndex > raft.log.applied) {
    return fail(
      RaftErrorCode.ConfChangePending,
      `the membership change at index ${raft.pendingConfIndex} is not applied yet (applied ${raft.log.applied})`,
    );
  }
  const invalid = validateConfChange(raft.confState, change);
  if (invalid !== null) return { ok: false, error: invalid };
  const index = raft.appendEntries([{ type: EntryType.ConfChange, data: encodeConfChange(change) }]);
  raft.pendingConfIndex = index;
  raft.appendBroadcastWanted = true;
  return { ok: true, index, term: raft.term };
}

function refuseProposal(raft: Raft): RaftError | null {
  if (raft.role !== Role.Leader) return raft.notLeaderError();
  if (raft.leadTransferee !== null) {
    return new RaftError({
      code: RaftErrorCode.TransferInProgress,
      message: `leadership is being transferred to ${raft.leadTransferee}; retry shortly`,
    });
  }
  return null;
}

// ---- leadership transfer ----

export function transferLeader(raft: Raft, to: NodeId): RaftResult {
  if (raft.role !== Role.Leader) return { ok: false, error: raft.notLeaderError() };
  if (to === raft.id || !raft.isVoter(to)) {
    return fail(RaftErrorCode.TransferTargetInvalid, `${to} is not another voter of this group`);
  }
  if (raft.leadTransferee === to) return { ok: true };
  raft.leadTransferee = to;
  // The transfer must finish within an election timeout, counted from now.
  raft.electionElapsed = 0;
  const pr = raft.progress.get(to);
  assert(pr !== undefined, () => `voter ${to} has no progress`);
  if (pr.match === raft.log.lastIndex()) sendTimeoutNow(raft, to);
  else sendAppend(raft, { to, sendIfEmpty: true });
  return { ok: true };
}

function sendTimeoutNow(raft: Raft, to: NodeId): void {
  raft.timeoutNowSent = true;
  raft.send({ type: 'timeoutNow', from: raft.id, to, term: raft.term });
}

function fail(code: RaftErrorCode, message: string): { ok: false; error: RaftError } {
  return { ok: false, error: new RaftError({ code, message }) };
}
