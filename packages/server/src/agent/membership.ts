import {
  type ConfChange,
  ConfChangeType,
  type NodeId,
  type ProposeResult,
  RaftErrorCode,
  type RaftStatus,
} from '@conclave/raft';
import type { Logger } from 'pino';
import { ConclaveError } from '../errors.js';
import type { GroupId } from '../host/ports.js';
import { dialableAddress } from '../transport/addresses.js';
import { errorMessage, ShapeError } from '../transport/shape.js';
import type { AddressBook } from './address-book.js';
import {
  decodeMemberContext,
  encodeMemberContext,
  type JoinGroupResult,
  type JoinReply,
  type JoinRequest,
  type MemberInfo,
  parseMembershipMessage,
  truncateDetail,
} from './membership-protocol.js';

export interface MembershipLimits {
  /** A join request forwarded to a group's leader fails for its groups after this long. */
  readonly forwardTimeoutMs: number;
  /** Requests this server waits on at once (its own and forwarded ones); more are refused. */
  readonly requestsPendingMax: number;
}

export const defaultMembershipLimits: MembershipLimits = {
  forwardTimeoutMs: 3000,
  requestsPendingMax: 256,
};

/**
 * The slice of the multi-Raft host membership needs. Structural, so a host of any state
 * machine result type fits.
 */
export interface MembershipHost {
  readonly groupCount: number;
  group(groupId: GroupId): { readonly raw: { status(): RaftStatus } };
  proposeConfChange(options: {
    groupId: GroupId;
    change: ConfChange;
  }): ProposeResult | { ok: false; error: ConclaveError };
}

/** The slice of the transport membership needs: control frames to a peer by id. */
export interface ControlChannel {
  sendControl(to: NodeId, value: unknown): void;
}

interface PendingRequest {
  readonly to: NodeId;
  readonly resolve: (reply: JoinReply) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Joins, on the members' side and the joiner's. Any member answers a join request: for the
 * groups it leads it proposes AddLearner (the joiner's addresses in the change's context,
 * so every member learns them at apply time), and it forwards the rest, once, to their
 * leaders over the transport. A request is answered with each group's status, never
 * queued: the joiner asks again until every group reports `member`, which keeps members
 * stateless and makes a repeated or restarted join harmless.
 */
export class MembershipService {
  private readonly limits: MembershipLimits;
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 1;
  private stopped = false;

  constructor(
    private readonly options: {
      nodeId: NodeId;
      host: MembershipHost;
      control: ControlChannel;
      addressBook: AddressBook;
      logger: Logger;
      limits?: Partial<MembershipLimits>;
    },
  ) {
    this.limits = { ...defaultMembershipLimits, ...options.limits };
  }

  /** A control frame from `from` (the transport's `onControl`). */
  onControl(from: NodeId, value: unknown): void {
    let message: ReturnType<typeof parseMembershipMessage>;
    try {
      message = parseMembershipMessage(value);
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error;
      this.options.logger.warn(
        { peer: from, err: error.message },
        `ignoring a malformed membership message from node ${from}: ${error.message}`,
      );
      return;
    }
    if (message.type === 'joinRequest') {
      this.answerJoin(from, message).catch((error: unknown) => {
        this.options.logger.error(
          { peer: from, err: errorMessage(error) },
          `answering the join request of node ${from} failed: ${errorMessage(error)}`,
        );
      });
    } else this.onReply(from, message);
  }

  /**
   * Ask `to` to add `member` to `groupIds`; resolves with the per-group results. Rejects
   * with TIMEOUT when no reply comes within `timeoutMs` (the request or the reply may have
   * been lost with a connection: asking again is safe).
   */
  requestJoin(options: {
    to: NodeId;
    member: MemberInfo;
    groupIds: readonly number[];
    timeoutMs: number;
    forwarded?: boolean;
  }): Promise<JoinReply> {
    if (this.stopped) return Promise.reject(stopping());
    if (this.pending.size >= this.limits.requestsPendingMax) {
      return Promise.reject(
        new ConclaveError({
          code: 'OVERLOADED',
          message: `${this.pending.size} membership requests are waiting`,
        }),
      );
    }
    const requestId = this.nextRequestId++;
    const request: JoinRequest = {
      type: 'joinRequest',
      requestId,
      member: options.member,
      groupIds: options.groupIds,
      forwarded: options.forwarded ?? false,
    };
    return new Promise<JoinReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new ConclaveError({
            code: 'TIMEOUT',
            message: `node ${options.to} did not answer a join request within ${options.timeoutMs} ms`,
          }),
        );
      }, options.timeoutMs);
      this.pending.set(requestId, { to: options.to, resolve, reject, timer });
      this.options.control.sendControl(options.to, request);
    });
  }

  /** Fail what still waits for a reply. */
  stop(): void {
    this.stopped = true;
    for (const request of this.pending.values()) {
      clearTimeout(request.timer);
      request.reject(stopping());
    }
    this.pending.clear();
  }

  private onReply(from: NodeId, reply: JoinReply): void {
    const request = this.pending.get(reply.requestId);
    // A late reply (after its timeout) or one from a node we did not ask: nothing waits for it.
    if (request === undefined || request.to !== from) return;
    this.pending.delete(reply.requestId);
    clearTimeout(request.timer);
    for (const member of reply.members) {
      if (member.nodeId !== this.options.nodeId) {
        this.options.addressBook.learn(member.nodeId, { raft: member.raft, http: member.http });
      }
    }
    request.resolve(reply);
  }

  private async answerJoin(from: NodeId, request: JoinRequest): Promise<void> {
    const member = request.forwarded ? request.member : this.dialable(request.member);
    const results: JoinGroupResult[] = [];
    if (!request.forwarded && member.nodeId !== from) {
      // A server asks to add itself; only a member forwarding may speak for another.
      for (const groupId of request.groupIds) {
        results.push(refused(groupId, `node ${from} may not ask to add node ${member.nodeId}`));
      }
      this.reply(from, request.requestId, results);
      return;
    }
    // Before proposing: our leader will dial the joiner as soon as the change applies.
    this.options.addressBook.learn(member.nodeId, { raft: member.raft, http: member.http });
    const byLeader = new Map<NodeId, number[]>();
    for (const groupId of new Set(request.groupIds)) {
      const local = this.joinLocally(groupId, member);
      const leaderId = local.leaderId;
      const forward =
        local.status === 'notLeader' &&
        !request.forwarded &&
        leaderId !== null &&
        leaderId !== this.options.nodeId;
      if (!forward) results.push(local);
      else byLeader.set(leaderId, [...(byLeader.get(leaderId) ?? []), groupId]);
    }
    await Promise.all(
      [...byLeader].map(([leaderId, groupIds]) => this.forward({ leaderId, groupIds, member, results })),
    );
    this.reply(from, request.requestId, results);
  }

  private async forward(options: {
    leaderId: NodeId;
    groupIds: readonly number[];
    member: MemberInfo;
    results: JoinGroupResult[];
  }): Promise<void> {
    const { leaderId, groupIds, results } = options;
    try {
      const reply = await this.requestJoin({
        to: leaderId,
        member: options.member,
        groupIds,
        timeoutMs: this.limits.forwardTimeoutMs,
        forwarded: true,
      });
      const asked = new Set(groupIds);
      results.push(...reply.results.filter((r) => asked.has(r.groupId)));
    } catch (error) {
      const detail = truncateDetail(`forwarding to node ${leaderId} failed: ${errorMessage(error)}`);
      for (const groupId of groupIds) results.push({ groupId, status: 'unreachable', leaderId, detail });
    }
  }

  /**
   * The joiner's announced addresses with a wildcard host (a server bound to 0.0.0.0)
   * replaced by the host its connection came from, before they are replicated to everyone.
   * Its hello already taught us that host.
   */
  private dialable(member: MemberInfo): MemberInfo {
    const seen = this.options.addressBook.raftAddress(member.nodeId)?.host;
    return {
      nodeId: member.nodeId,
      raft: dialableAddress(member.raft, seen),
      http: member.http === null ? null : dialableAddress(member.http, seen),
    };
  }

  /** What this server can do for one group by itself. */
  private joinLocally(groupId: number, member: MemberInfo): JoinGroupResult {
    const { host } = this.options;
    if (!Number.isSafeInteger(groupId) || groupId >= host.groupCount) {
      return refused(groupId, `there is no group ${groupId} (groups: ${host.groupCount})`);
    }
    const status = host.group(groupId).raw.status();
    const result = (status_: JoinGroupResult['status'], detail: string | null = null): JoinGroupResult => ({
      groupId,
      status: status_,
      leaderId: status.leaderId,
      detail: detail === null ? null : truncateDetail(detail),
    });
    if (status.role !== 'leader') return result(status.leaderId === null ? 'noLeader' : 'notLeader');
    const { voters, learners } = status.confState;
    if (voters.includes(member.nodeId) || learners.includes(member.nodeId)) return result('member');
    const proposed = host.proposeConfChange({
      groupId,
      change: {
        type: ConfChangeType.AddLearner,
        nodeId: member.nodeId,
        context: encodeMemberContext(member),
      },
    });
    if (proposed.ok) {
      const reason = `join request from ${member.nodeId}`;
      this.options.logger.info(
        {
          event: 'server_adding',
          group: groupId,
          server: member.nodeId,
          term: status.term,
          index: proposed.index,
          reason,
        },
        `group ${groupId}: adding server ${member.nodeId} as a learner (term ${status.term}): ${reason}`,
      );
      return result('proposed');
    }
    switch (proposed.error.code) {
      case RaftErrorCode.ConfChangePending:
      case RaftErrorCode.TransferInProgress:
        return result('pending', proposed.error.message);
      case RaftErrorCode.NotLeader:
        return result('notLeader', proposed.error.message);
      default:
        return result('refused', proposed.error.message);
    }
  }

  private reply(to: NodeId, requestId: number, results: readonly JoinGroupResult[]): void {
    const members: MemberInfo[] = [];
    for (const [nodeId, addresses] of this.options.addressBook.entries()) {
      if (addresses.raft !== null) members.push({ nodeId, raft: addresses.raft, http: addresses.http });
    }
    const reply: JoinReply = {
      type: 'joinReply',
      requestId,
      groupCount: this.options.host.groupCount,
      results,
      members,
    };
    this.options.control.sendControl(to, reply);
  }
}

/**
 * A membership change was applied (the host's `onConfChange`, on every member): learn the
 * addresses its context carries, so that this server can dial the new member even if it
 * never heard from it (it may lead a group later) and after the entry is compacted away.
 */
export function learnFromConfChange(options: {
  selfId: NodeId;
  addressBook: AddressBook;
  logger: Logger;
  event: { groupId: GroupId; index: number; change: ConfChange };
}): void {
  const { groupId, index, change } = options.event;
  // At debug: the host's observer logs every applied change already (metrics/host-events.ts).
  options.logger.debug(
    { groupId, index, change: change.type, nodeId: change.nodeId },
    `group ${groupId}: applied ${change.type} ${change.nodeId} at index ${index}`,
  );
  const addresses = decodeMemberContext(change.context);
  if (addresses === null || change.nodeId === options.selfId) return;
  options.addressBook.learn(change.nodeId, addresses);
}

function refused(groupId: number, detail: string): JoinGroupResult {
  return { groupId, status: 'refused', leaderId: null, detail: truncateDetail(detail) };
}

function stopping(): ConclaveError {
  return new ConclaveError({ code: 'SHUTTING_DOWN', message: 'this server is shutting down' });
}
