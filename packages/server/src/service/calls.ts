import type { EventsRead, FsmCommand, FsmResult, PrimitiveRead } from '../fsm/index.js';
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
  | { readonly kind: 'autopilot-config' }
  /** A coordination primitive's read, or this group's part of a gather read. */
  | ({ readonly kind: 'primitive' } & { readonly read: PrimitiveRead })
  /** A primitive's changes after a version, from this server's event log (a stale read). */
  | { readonly kind: 'primitive-events'; readonly read: EventsRead };

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
  /**
   * User snapshots (service/snapshot.ts): open a cursor over the group's state on the server
   * that runs the call (its leader; with `stale`, any server), then read its parts and close
   * it there: cursor calls go to the cursor's server (GroupRouter.callServer), not the leader.
   */
  | { readonly kind: 'snapshot-open'; readonly stale: boolean }
  | { readonly kind: 'snapshot-read'; readonly cursorId: string; readonly bytesMax: number }
  | { readonly kind: 'snapshot-close'; readonly cursorId: string };

export type GroupReply =
  | { readonly kind: 'apply'; readonly index: number; readonly result: FsmResult }
  | { readonly kind: 'read'; readonly value: unknown; readonly meta: ReadMeta }
  | { readonly kind: 'renew'; readonly session: SessionEntry | null }
  | { readonly kind: 'status'; readonly status: GroupStatus }
  /** `started` is false when `to` already leads the group. */
  | { readonly kind: 'transfer-leader'; readonly from: string; readonly started: boolean }
  /** `index` is where the removal applied; null when the server was not a member. */
  | { readonly kind: 'remove-peer'; readonly index: number | null }
  /** A cursor over the group's state at `index`, with the term and configuration of that moment. */
  | {
      readonly kind: 'snapshot-open';
      readonly cursorId: string;
      /** The server holding the cursor: every read and the close go there. */
      readonly nodeId: string;
      readonly index: number;
      readonly term: number;
      readonly voters: readonly string[];
      readonly learners: readonly string[];
      readonly keys: number;
    }
  /** The next parts in order, at most the read's bytesMax (but one at least); done after the last. */
  | { readonly kind: 'snapshot-read'; readonly parts: readonly Uint8Array[]; readonly done: boolean }
  | { readonly kind: 'snapshot-close' };

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

/** The reply of the kind the call asked for; anything else is a bug on the answering side. */
export function expectReply<K extends GroupReply['kind']>(
  reply: GroupReply,
  kind: K,
): Extract<GroupReply, { kind: K }> {
  if (reply.kind !== kind) throw new Error(`expected a ${kind} reply, got ${reply.kind}`);
  return reply as Extract<GroupReply, { kind: K }>;
}
