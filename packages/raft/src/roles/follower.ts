import { assert } from '../errors.js';
import type { Raft, SnapshotAssembly } from '../raft.js';
import type { AppendMessage, HeartbeatMessage, Message, SnapshotMessage } from '../types.js';

export function stepFollower(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
      raft.electionElapsed = 0;
      raft.leaderId = message.from;
      if (message.type === 'app') handleAppend(raft, message);
      else if (message.type === 'heartbeat') handleHeartbeat(raft, message);
      else handleSnapshotChunk(raft, message);
      return;
    case 'timeoutNow':
      // The leader hands over: campaign at once, skipping PreVote and voters' leases.
      raft.campaign('transfer');
      return;
    default:
      return;
  }
}

function handleAppend(raft: Raft, message: AppendMessage): void {
  const respond = (fields: { index: number; reject: boolean; hintIndex: number; hintTerm: number }): void => {
    raft.send({ type: 'appResp', from: raft.id, to: message.from, term: raft.term, ...fields });
  };
  if (!raft.knowsMembership()) {
    // A joining node with an empty log must start from a snapshot, which carries the
    // membership: refuse entries so that the leader sends one.
    respond({ index: message.index, reject: true, hintIndex: 0, hintTerm: 0 });
    return;
  }
  if (message.index < raft.log.committed) {
    // Everything up to our commit index matches the leader already.
    respond({ index: raft.log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
    return;
  }
  const lastNewIndex = raft.log.maybeAppend(message);
  if (lastNewIndex !== null) {
    respond({ index: lastNewIndex, reject: false, hintIndex: 0, hintTerm: 0 });
    return;
  }
  const hint = raft.log.findConflictByTerm({ index: message.index, term: message.logTerm });
  respond({ index: message.index, reject: true, hintIndex: hint.index, hintTerm: hint.term });
}

function handleHeartbeat(raft: Raft, message: HeartbeatMessage): void {
  raft.log.commitTo(message.commit);
  raft.send({
    type: 'heartbeatResp',
    from: raft.id,
    to: message.from,
    term: raft.term,
    round: message.round,
  });
}

/**
 * Assemble an InstallSnapshot from chunks sent one at a time. A chunk that does not
 * continue the assembly means the leader and we disagree about what we hold: a reject
 * sends the leader back to probing, and it restarts the snapshot from the beginning.
 */
function handleSnapshotChunk(raft: Raft, message: SnapshotMessage): void {
  const { metadata } = message;
  if (metadata.index <= raft.log.committed && raft.knowsMembership()) {
    raft.snapshotAssembly = null;
    raft.send(appendAck(raft, message.from, raft.log.committed));
    return;
  }
  if (message.offset === 0) raft.snapshotAssembly = { metadata, chunks: [], bytes: 0 };
  const assembly = raft.snapshotAssembly;
  const sameSnapshot =
    assembly !== null &&
    assembly.metadata.index === metadata.index &&
    assembly.metadata.term === metadata.term;
  if (assembly === null || !sameSnapshot || assembly.bytes !== message.offset) {
    if (assembly !== null && sameSnapshot && message.offset < assembly.bytes) {
      // A duplicate of a chunk we hold: acknowledge where we are.
      acknowledgeChunk(raft, message.from, assembly);
    } else rejectSnapshot(raft, message.from);
    return;
  }
  if (assembly.bytes + message.data.byteLength > raft.config.snapshotBytesMax) {
    rejectSnapshot(raft, message.from);
    return;
  }
  assembly.chunks.push(message.data.slice());
  assembly.bytes += message.data.byteLength;
  if (!message.done) {
    acknowledgeChunk(raft, message.from, assembly);
    return;
  }
  raft.snapshotAssembly = null;
  const data = concat(assembly.chunks, assembly.bytes);
  raft.send(appendAck(raft, message.from, restoreSnapshot(raft, { metadata, data })));
}

function acknowledgeChunk(raft: Raft, to: string, assembly: SnapshotAssembly): void {
  const index = assembly.metadata.index;
  raft.send({ type: 'snapResp', from: raft.id, to, term: raft.term, index, offset: assembly.bytes });
}

/** Drop the assembly and reject, so the leader probes again and restarts the snapshot. */
function rejectSnapshot(raft: Raft, to: string): void {
  raft.snapshotAssembly = null;
  raft.send({ ...appendAck(raft, to, raft.log.lastIndex()), reject: true });
}

/** Install a complete snapshot. Returns the index now known to match the leader. */
function restoreSnapshot(
  raft: Raft,
  snapshot: { metadata: SnapshotMessage['metadata']; data: Uint8Array },
): number {
  const { index, term } = snapshot.metadata;
  if (raft.knowsMembership() && raft.log.matchTerm(index, term)) {
    // We hold the snapshot's last entry: our log already contains it, just commit.
    raft.log.commitTo(index);
    return index;
  }
  raft.log.restore(snapshot);
  raft.restoreConf({ index, confState: snapshot.metadata.confState });
  assert(raft.log.lastIndex() === index, 'restore left a log that does not end at the snapshot');
  return index;
}

function appendAck(raft: Raft, to: string, index: number) {
  return {
    type: 'appResp',
    from: raft.id,
    to,
    term: raft.term,
    index,
    reject: false,
    hintIndex: 0,
    hintTerm: 0,
  } as const;
}

function concat(chunks: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
