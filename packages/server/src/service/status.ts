import type { MemberStatus } from '@conclave/protocol';
import { ConfChangeType, RaftError, RaftErrorCode } from '@conclave/raft';
import type { Logger } from 'pino';
import { ConclaveError } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupReply } from './calls.js';
import { encodeRemovalContext } from './removal-context.js';

export type { MemberStatus } from '@conclave/protocol';

/**
 * Operator calls executed on one server for one group: its status as this server sees it,
 * starting a leadership transfer, and removing a member. The router sends the last two
 * (and a non-stale status) to the group's leader, whose view is the authoritative one.
 */

export interface GroupStatus {
  readonly groupId: GroupId;
  /** The server whose view this is, and its role in the group. */
  readonly nodeId: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The first index still in the log; `lastIndex - firstIndex + 1` entries are kept. */
  readonly firstIndex: number;
  /** Since this server heard from the leader (ms); 0 on the leader. */
  readonly lastContactMs: number;
  readonly snapshotIndex: number;
  /** Wall-clock ms of the last snapshot taken or installed since this server started; null if none. */
  readonly snapshotTimeMs: number | null;
  readonly members: readonly MemberStatus[];
}

type Host = MultiRaftHost<FsmResult>;

/** This server's view of one group: cheap, no I/O. */
export function localGroupStatus(options: { host: Host; groupId: GroupId; tickMs: number }): GroupStatus {
  const group = options.host.group(options.groupId);
  const status = group.raw.status();
  const member = (id: string, voter: boolean): MemberStatus => {
    const progress = status.progress?.get(id);
    return {
      id,
      voter,
      leader: id === status.leaderId,
      matchIndex: progress?.match ?? null,
      trailingEntries: progress === undefined ? null : Math.max(0, status.lastIndex - progress.match),
      // The leader does not track its own activity: it is active by definition.
      recentActive: progress === undefined ? null : progress.recentActive || id === status.id,
    };
  };
  const snapshot = group.lastSnapshot;
  return {
    groupId: options.groupId,
    nodeId: status.id,
    role: status.role,
    term: status.term,
    leaderId: status.leaderId,
    commitIndex: status.commit,
    appliedIndex: status.applied,
    lastIndex: status.lastIndex,
    firstIndex: group.logFirstIndex,
    lastContactMs: status.role === 'leader' ? 0 : status.electionElapsedTicks * options.tickMs,
    snapshotIndex: snapshot.index,
    snapshotTimeMs: snapshot.timeMs,
    members: [
      ...status.confState.voters.map((id) => member(id, true)),
      ...status.confState.learners.map((id) => member(id, false)),
    ],
  };
}

/** Start handing the group's leadership to `to` (leader only). Leading already is not an error. */
export function startLeaderTransfer(options: { host: Host; groupId: GroupId; to: string }): GroupReply {
  const raw = options.host.group(options.groupId).raw;
  const status = raw.status();
  requireLeader({ groupId: options.groupId, role: status.role, leaderId: status.leaderId });
  if (options.to === status.id) return { kind: 'transfer-leader', from: status.id, started: false };
  const started = options.host.transferLeader({ groupId: options.groupId, to: options.to });
  if (!started.ok) throw started.error;
  return { kind: 'transfer-leader', from: status.id, started: true };
}

export interface RemoveLimits {
  /** How long a removal waits for a reachable majority to remain, then to apply (ms). */
  readonly waitMs: number;
}

export const defaultRemoveLimits: RemoveLimits = { waitMs: 5_000 };

/**
 * Remove `nodeId` from the group (leader only) and wait until the change is applied here.
 * Refused when it would leave no voter, or fewer reachable voters than a majority of those
 * left: a group that loses its quorum that way cannot even undo the change. With `log`,
 * the proposal is logged at warn with who asked and why (`reason`): a removal is the
 * membership change an operator most needs to see.
 */
export async function removeFromGroup(options: {
  host: Host;
  groupId: GroupId;
  nodeId: string;
  tickMs: number;
  /** Who removes it and why: replicated with the change, shown by operator status and health. */
  reason: string;
  limits?: RemoveLimits;
  signal?: AbortSignal | undefined;
  /** Where to say, at warn, that this server proposes the removal and why. */
  logger?: Logger | undefined;
}): Promise<GroupReply> {
  const { host, groupId, nodeId } = options;
  const deadlineMs = Date.now() + (options.limits ?? defaultRemoveLimits).waitMs;
  const group = host.group(groupId);
  let status = group.raw.status();
  requireLeader({ groupId, role: status.role, leaderId: status.leaderId });
  const { voters, learners } = status.confState;
  if (!voters.includes(nodeId) && !learners.includes(nodeId)) return { kind: 'remove-peer', index: null };
  if (voters.length === 1 && voters[0] === nodeId) {
    throw new ConclaveError({
      code: 'CONF_CHANGE_INVALID',
      message: `cannot remove ${nodeId} from group ${groupId}: it is the group's only voter`,
    });
  }
  // Activity is reset every election timeout and refreshed by the next heartbeat round, so a
  // voter seen as inactive is given until the deadline to answer before the removal is refused.
  while (!keepsReachableMajority({ nodeId, voters, progress: status.progress, self: status.id })) {
    if (Date.now() >= deadlineMs || (options.signal?.aborted ?? false)) {
      throw new ConclaveError({
        code: 'QUORUM_AT_RISK',
        message: `removing ${nodeId} from group ${groupId} would leave fewer reachable voters than a majority of ${voters.length - 1}`,
      });
    }
    await delay(options.tickMs);
    status = group.raw.status();
    requireLeader({ groupId, role: status.role, leaderId: status.leaderId });
  }
  const proposed = host.proposeConfChange({
    groupId,
    change: { type: ConfChangeType.RemoveNode, nodeId, context: encodeRemovalContext(options.reason) },
  });
  if (!proposed.ok) throw proposed.error;
  if (options.logger !== undefined) {
    const { logger, reason } = options;
    logger.warn(
      {
        event: 'server_removing',
        group: groupId,
        server: nodeId,
        term: status.term,
        index: proposed.index,
        reason,
      },
      `group ${groupId}: removing server ${nodeId} (term ${status.term}, index ${proposed.index}): ${reason}`,
    );
  }
  while (group.applied < proposed.index) {
    if (Date.now() >= deadlineMs) {
      throw new ConclaveError({
        code: 'TIMEOUT',
        message: `the removal of ${nodeId} from group ${groupId} (index ${proposed.index}) did not apply in time`,
      });
    }
    await delay(options.tickMs);
  }
  const after = group.raw.status().confState;
  if (after.voters.includes(nodeId) || after.learners.includes(nodeId)) {
    // Another leader's entry took the index: the change was lost with this leadership.
    throw new RaftError({
      code: RaftErrorCode.NotLeader,
      message: `the removal of ${nodeId} from group ${groupId} was replaced after a leader change; retry`,
      leaderId: group.raw.status().leaderId,
    });
  }
  return { kind: 'remove-peer', index: proposed.index };
}

/** Whether the voters left after removing `nodeId` still count a reachable majority. */
export function keepsReachableMajority(options: {
  nodeId: string;
  voters: readonly string[];
  progress: ReadonlyMap<string, { readonly recentActive: boolean }> | null;
  self: string;
}): boolean {
  const remaining = options.voters.filter((id) => id !== options.nodeId);
  const reachable = remaining.filter(
    (id) => id === options.self || (options.progress?.get(id)?.recentActive ?? false),
  );
  return reachable.length > remaining.length / 2;
}

function requireLeader(options: { groupId: GroupId; role: string; leaderId: string | null }): void {
  if (options.role === 'leader') return;
  throw new RaftError({
    code: RaftErrorCode.NotLeader,
    message: `this server does not lead group ${options.groupId}`,
    leaderId: options.leaderId,
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
