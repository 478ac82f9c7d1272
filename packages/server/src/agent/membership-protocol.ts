/**
 * The membership requests servers exchange in transport control frames, and the context a
 * membership change carries in the log. Everything from the wire is rebuilt field by field
 * here before it is used, as the transport does for Raft messages.
 */
import { confChangeContextBytesMax, type NodeId } from '@conclave/raft';
import { decodeBody, encodeValue } from '../transport/codec.js';
import { array, nodeId, object, peerAddress, ShapeError, string, uint } from '../transport/shape.js';
import type { Address } from './config.js';

/** A server and where it listens, as a joiner announces itself. */
export interface MemberInfo {
  readonly nodeId: NodeId;
  readonly raft: Address;
  readonly http: Address | null;
}

/**
 * Where a join stands in one group, as the group's leader (or the member asked) sees it:
 * - `member`: the server is a learner or voter in the membership the leader has applied;
 * - `proposed`: the leader just appended AddLearner; ask again to see it applied;
 * - `pending`: another membership change (or a leadership transfer) is under way; ask again;
 * - `notLeader` / `noLeader`: the member asked is not the leader and could not forward;
 * - `unreachable`: the leader did not answer a forwarded request in time;
 * - `refused`: the leader will not add it (`detail` says why); asking again will not help.
 */
export type JoinStatus =
  | 'member'
  | 'proposed'
  | 'pending'
  | 'notLeader'
  | 'noLeader'
  | 'unreachable'
  | 'refused';

const joinStatuses: ReadonlySet<string> = new Set<JoinStatus>([
  'member',
  'proposed',
  'pending',
  'notLeader',
  'noLeader',
  'unreachable',
  'refused',
]);

export interface JoinGroupResult {
  readonly groupId: number;
  readonly status: JoinStatus;
  readonly leaderId: NodeId | null;
  readonly detail: string | null;
}

/** Add `member` as a learner of `groupIds`. `forwarded` requests are not forwarded again. */
export interface JoinRequest {
  readonly type: 'joinRequest';
  readonly requestId: number;
  readonly member: MemberInfo;
  readonly groupIds: readonly number[];
  readonly forwarded: boolean;
}

/** The answer, per group, and every server the answering member knows of. */
export interface JoinReply {
  readonly type: 'joinReply';
  readonly requestId: number;
  /** The groups the answering member runs: a joiner must run as many. */
  readonly groupCount: number;
  readonly results: readonly JoinGroupResult[];
  readonly members: readonly MemberInfo[];
}

export type MembershipMessage = JoinRequest | JoinReply;

export const membershipLimits = {
  /** Groups named in one request (the host's group count is at most this). */
  groupsPerRequestMax: 1024,
  /** Servers listed in one reply. */
  membersPerReplyMax: 1024,
  detailLengthMax: 512,
} as const;

/** Parse a control value, or throw {@link ShapeError}. */
export function parseMembershipMessage(value: unknown): MembershipMessage {
  const f = object(value, 'control');
  const requestId = uint(f.requestId, 'control.requestId');
  if (f.type === 'joinRequest') {
    const groupIds = boundedArray(f.groupIds, 'control.groupIds', membershipLimits.groupsPerRequestMax).map(
      (g, i) => uint(g, `control.groupIds[${i}]`),
    );
    if (typeof f.forwarded !== 'boolean') throw new ShapeError('control.forwarded must be a boolean');
    return {
      type: 'joinRequest',
      requestId,
      member: memberInfo(f.member, 'control.member'),
      groupIds,
      forwarded: f.forwarded,
    };
  }
  if (f.type === 'joinReply') {
    return {
      type: 'joinReply',
      requestId,
      groupCount: uint(f.groupCount, 'control.groupCount'),
      results: boundedArray(f.results, 'control.results', membershipLimits.groupsPerRequestMax).map((r, i) =>
        groupResult(r, `control.results[${i}]`),
      ),
      members: boundedArray(f.members, 'control.members', membershipLimits.membersPerReplyMax).map((m, i) =>
        memberInfo(m, `control.members[${i}]`),
      ),
    };
  }
  throw new ShapeError('control.type must be joinRequest or joinReply');
}

function boundedArray(value: unknown, path: string, lengthMax: number): readonly unknown[] {
  const items = array(value, path);
  if (items.length > lengthMax) throw new ShapeError(`${path} holds more than ${lengthMax} items`);
  return items;
}

function memberInfo(value: unknown, path: string): MemberInfo {
  const f = object(value, path);
  return {
    nodeId: nodeId(f.nodeId, `${path}.nodeId`),
    raft: peerAddress(f.raft, `${path}.raft`),
    http: f.http === null || f.http === undefined ? null : peerAddress(f.http, `${path}.http`),
  };
}

function groupResult(value: unknown, path: string): JoinGroupResult {
  const f = object(value, path);
  if (typeof f.status !== 'string' || !joinStatuses.has(f.status)) {
    throw new ShapeError(`${path}.status must be a join status`);
  }
  return {
    groupId: uint(f.groupId, `${path}.groupId`),
    status: f.status as JoinStatus,
    leaderId: f.leaderId === null || f.leaderId === undefined ? null : nodeId(f.leaderId, `${path}.leaderId`),
    detail:
      f.detail === null || f.detail === undefined
        ? null
        : string(f.detail, `${path}.detail`, membershipLimits.detailLengthMax),
  };
}

// ---------------------------------------------------------------------------------------
// The context of AddLearner: the new server's addresses, replicated to every member so that
// any of them, even one that restarts or becomes leader later, can dial it.

const contextVersion = 1;

export function encodeMemberContext(member: MemberInfo): Uint8Array {
  const bytes = encodeValue({ v: contextVersion, raft: member.raft, http: member.http });
  // Hosts are at most 253 characters each, so this always fits; a bug otherwise.
  if (bytes.byteLength > confChangeContextBytesMax) {
    throw new Error(`member context of ${bytes.byteLength} bytes exceeds ${confChangeContextBytesMax}`);
  }
  return bytes;
}

/**
 * The addresses in a change's context, or null when there is none or it does not parse:
 * a context is advisory (addresses are also learned from handshakes), so applying the
 * change never fails because of it.
 */
export function decodeMemberContext(
  context: Uint8Array | undefined,
): { raft: Address; http: Address | null } | null {
  if (context === undefined || context.byteLength === 0) return null;
  try {
    const f = object(decodeBody(context), 'context');
    if (f.v !== contextVersion) return null;
    return {
      raft: peerAddress(f.raft, 'context.raft'),
      http: f.http === null || f.http === undefined ? null : peerAddress(f.http, 'context.http'),
    };
  } catch {
    return null;
  }
}

export function truncateDetail(text: string): string {
  return text.length <= membershipLimits.detailLengthMax
    ? text
    : `${text.slice(0, membershipLimits.detailLengthMax - 1)}…`;
}
