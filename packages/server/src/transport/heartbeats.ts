import type { HeartbeatMessage, HeartbeatResponseMessage, NodeId } from '@conclave/raft';
import { array, nodeId, object, ShapeError, uint } from './shape.js';
import type { Envelope } from './types.js';

/**
 * Heartbeat coalescing. A server leading G groups sends G heartbeats per heartbeat
 * interval to each follower server, and gets G answers back; as full messages each costs
 * ~50 bytes of keys and ids. Between one pair of servers every one of them has the same
 * `from` and `to`, so a bundle states those once and keeps only the numbers that differ:
 * per heartbeat `groupId, term, commit, round`, per response `groupId, term, round`, as
 * flat number arrays (a few bytes per group in MessagePack).
 *
 * Both functions are pure, and `expandHeartbeats(coalesceHeartbeats(x).bundle)` gives back
 * exactly the heartbeats of `x`: heartbeats in their order, then responses in theirs.
 */
export interface HeartbeatBundle {
  readonly from: NodeId;
  readonly to: NodeId;
  /** Flat quadruples `groupId, term, commit, round`, one per heartbeat. */
  readonly heartbeats: readonly number[];
  /** Flat triples `groupId, term, round`, one per heartbeat response. */
  readonly responses: readonly number[];
}

export const heartbeatStride = 4;
export const responseStride = 3;

export interface CoalescedHeartbeats {
  /** Null when `envelopes` held no heartbeat or heartbeat response to coalesce. */
  readonly bundle: HeartbeatBundle | null;
  /** Every other envelope, in order: other types, and heartbeats with another from/to. */
  readonly rest: Envelope[];
}

/**
 * Fold the heartbeats and heartbeat responses among `envelopes` (all meant for one peer)
 * into one bundle. The bundle's from/to are those of the first heartbeat found; any with
 * a different pair are left in `rest` untouched.
 */
export function coalesceHeartbeats(envelopes: readonly Envelope[]): CoalescedHeartbeats {
  let pair: { from: NodeId; to: NodeId } | null = null;
  const heartbeats: number[] = [];
  const responses: number[] = [];
  const rest: Envelope[] = [];
  for (const envelope of envelopes) {
    const m = envelope.message;
    if (m.type !== 'heartbeat' && m.type !== 'heartbeatResp') {
      rest.push(envelope);
      continue;
    }
    pair ??= { from: m.from, to: m.to };
    if (m.from !== pair.from || m.to !== pair.to) {
      rest.push(envelope);
    } else if (m.type === 'heartbeat') {
      heartbeats.push(envelope.groupId, m.term, m.commit, m.round);
    } else {
      responses.push(envelope.groupId, m.term, m.round);
    }
  }
  return { bundle: pair === null ? null : { ...pair, heartbeats, responses }, rest };
}

/** The inverse of {@link coalesceHeartbeats}: one envelope per heartbeat and response. */
export function expandHeartbeats(bundle: HeartbeatBundle): Envelope[] {
  const { from, to, heartbeats, responses } = bundle;
  const out: Envelope[] = [];
  for (let i = 0; i + heartbeatStride <= heartbeats.length; i += heartbeatStride) {
    const [groupId = 0, term = 0, commit = 0, round = 0] = heartbeats.slice(i, i + heartbeatStride);
    const message: HeartbeatMessage = { type: 'heartbeat', from, to, term, commit, round };
    out.push({ groupId, message });
  }
  for (let i = 0; i + responseStride <= responses.length; i += responseStride) {
    const [groupId = 0, term = 0, round = 0] = responses.slice(i, i + responseStride);
    const message: HeartbeatResponseMessage = { type: 'heartbeatResp', from, to, term, round };
    out.push({ groupId, message });
  }
  return out;
}

/** Rebuild a bundle decoded from the wire, or throw {@link ShapeError}. */
export function parseHeartbeatBundle(value: unknown, path: string): HeartbeatBundle {
  const fields = object(value, path);
  const numbers = (key: string, stride: number): number[] => {
    const items = array(fields[key], `${path}.${key}`);
    if (items.length % stride !== 0) {
      throw new ShapeError(`${path}.${key} must hold a multiple of ${stride} numbers, got ${items.length}`);
    }
    return items.map((n, i) => uint(n, `${path}.${key}[${i}]`));
  };
  return {
    from: nodeId(fields.from, `${path}.from`),
    to: nodeId(fields.to, `${path}.to`),
    heartbeats: numbers('heartbeats', heartbeatStride),
    responses: numbers('responses', responseStride),
  };
}

/** The bytes MessagePack (as msgpackr writes it) spends on a non-negative integer. */
export function uintBytes(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x100) return 2;
  if (n < 0x1_0000) return 3;
  if (n < 0x1_0000_0000) return 5;
  return 9; // msgpackr writes larger integers as float64, exact up to 2^53
}
