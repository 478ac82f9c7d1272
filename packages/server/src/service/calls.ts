import type { GroupCapture } from '../archive/format.js';
import type { FsmCommand, FsmResult } from '../fsm/index.js';
import type { GroupStatus } from './status.js';
import type { ReadMeta, ReadRequest, SessionEntry } from './types.js';

/** A read of one group's state machine. */
export type GroupQuery =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'list'; readonly prefix: string }
  | { readonly kind: 'keys'; readonly prefix: string; readonly separator: string | null }
  | { readonly kind: 'session'; readonly id: string }
  | { readonly kind: 'sessions'; readonly node: string | null }
  /** Autopilot's settings (group 0): a StoredAutopilot or null. */
  | { readonly kind: 'autopilot-config' };

/**
 * One request to one group, executed by the server that leads it (or, for a stale read, by
 * any server). It is what a server forwards to another over `/v1/internal/group/:id/call`.
 */
export type GroupCall =
  | { readonly kind: 'apply'; readonly command: FsmCommand }
  | { readonly kind: 'read'; readonly query: GroupQuery; readonly read: ReadRequest }
  | { readonly kind: 'renew'; readonly id: string }
  // Operator calls (service/status.ts): a status answers from whichever server runs it.
  | { readonly kind: 'status' }
  | { readonly kind: 'transfer-leader'; readonly to: string }
  | { readonly kind: 'remove-peer'; readonly nodeId: string }
  /** The group's state for a user snapshot (service/snapshot.ts), from the server that runs it. */
  | { readonly kind: 'snapshot' };

export type GroupReply =
  | { readonly kind: 'apply'; readonly index: number; readonly result: FsmResult }
  | { readonly kind: 'read'; readonly value: unknown; readonly meta: ReadMeta }
  | { readonly kind: 'renew'; readonly session: SessionEntry | null }
  | { readonly kind: 'status'; readonly status: GroupStatus }
  /** `started` is false when `to` already leads the group. */
  | { readonly kind: 'transfer-leader'; readonly from: string; readonly started: boolean }
  /** `index` is where the removal applied; null when the server was not a member. */
  | { readonly kind: 'remove-peer'; readonly index: number | null }
  /** The group's FSM snapshot at its applied index, with its term and configuration. */
  | { readonly kind: 'snapshot'; readonly capture: GroupCapture };

/** Executes calls for groups: locally, or by forwarding to the group's leader. */
export interface GroupCaller {
  call(options: { groupId: number; call: GroupCall; signal?: AbortSignal | undefined }): Promise<GroupReply>;
}

export function expectApply(reply: GroupReply): Extract<GroupReply, { kind: 'apply' }> {
  if (reply.kind !== 'apply') throw new Error(`expected an apply reply, got ${reply.kind}`);
  return reply;
}

export function expectRead(reply: GroupReply): Extract<GroupReply, { kind: 'read' }> {
  if (reply.kind !== 'read') throw new Error(`expected a read reply, got ${reply.kind}`);
  return reply;
}
