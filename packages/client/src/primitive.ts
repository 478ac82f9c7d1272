import { opModeOf, type PrimitiveKind } from '@conclave/protocol';
import { blockingWaitMaxMs } from './client.js';
import * as decode from './decode.js';
import { badResponse } from './errors.js';
import type { HttpTransport } from './http.js';
import type { Consistency, ReadMeta } from './types.js';

/**
 * One call of a coordination primitive: `POST /v1/primitive/<kind>/<name>/<op>`. The SDK
 * (`connect()`) builds typed handles on it; this is the wire, for tools and tests.
 */
export interface PrimitiveCall {
  readonly kind: PrimitiveKind;
  readonly name: string;
  readonly op: string;
  /** The operation's arguments; Uint8Array values go as base64, as the server expects. */
  readonly args?: Readonly<Record<string, unknown>>;
  /** The caller's session: needed by locks, semaphores, candidacies and ephemeral writes. */
  readonly session?: string;
  /**
   * The session's sequence number of this write (from 1): the server applies a write once
   * however often it arrives with the same (session, seq), so the call is retried even after
   * its request may have reached the server. Without one, a write is retried only when no
   * server can have applied it.
   */
  readonly seq?: number;
  /** The group a page of `entries`/`elements` comes from (default 0). */
  readonly group?: number;
  /** Reads: the read mode (default: the group leader's state). */
  readonly consistency?: Consistency;
  /** Reads: block until the primitive's state has an index above this one (0: never block). */
  readonly index?: number;
  /** Reads: how long a blocking read may wait, ms; `events`: how long to wait for a change. */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
}

export interface PrimitiveAnswer {
  /** The operation's result as the server sent it: bytes are still base64 strings. */
  readonly result: unknown;
  /** The Raft index of the write, or the index of the state read (pass it back as `index`). */
  readonly index: number;
  /** A read's X-Consul-* metadata; null for a write. */
  readonly meta: ReadMeta | null;
}

export async function sendPrimitive(http: HttpTransport, call: PrimitiveCall): Promise<PrimitiveAnswer> {
  const mode = opModeOf(call);
  // An operation this client does not know (a newer server's) is taken for a write.
  const read = mode === 'read' || mode === 'gather-read' || mode === 'events';
  const index = read ? (call.index ?? 0) : 0;
  // A read blocks past an index; an `events` call waits for a change when given a wait.
  const blocking = mode === 'events' ? call.waitMs !== undefined : index > 0;
  const waitMs = blocking ? Math.min(call.waitMs ?? blockingWaitMaxMs, blockingWaitMaxMs) : undefined;
  const body = JSON.stringify({
    ...(call.args === undefined ? {} : { args: argsJson(call.args) }),
    ...(call.session === undefined ? {} : { session: call.session }),
    ...(call.seq === undefined ? {} : { seq: call.seq }),
    ...(call.group === undefined ? {} : { group: call.group }),
  });
  const answer = await http.send({
    method: 'POST',
    path: `/v1/primitive/${call.kind}/${encodeURIComponent(call.name)}/${encodeURIComponent(call.op)}`,
    query: read
      ? {
          consistent: call.consistency === 'consistent' ? true : undefined,
          stale: call.consistency === 'stale' ? true : undefined,
          index: index > 0 ? index : undefined,
          wait: waitMs === undefined ? undefined : `${waitMs}ms`,
        }
      : {},
    body,
    // A read changes nothing, and a write with a seq applies once: both may be sent again.
    repeatable: read || call.seq !== undefined,
    ...(waitMs === undefined ? {} : { waitMs }),
    ...(call.signal === undefined ? {} : { signal: call.signal }),
  });
  const parsed = decode.object(decode.parseJson(answer), 'primitive answer');
  const answered = parsed.index;
  if (typeof answered !== 'number' || !Number.isSafeInteger(answered) || answered < 0) {
    throw badResponse('primitive answer.index is not a non-negative integer', answer.status);
  }
  return { result: parsed.result ?? null, index: answered, meta: read ? decode.readMeta(answer) : null };
}

/** The arguments as JSON: bytes as base64 (in lists and objects too), everything else as it is. */
function argsJson(args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(args)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, jsonOf(value)]),
  );
}

function jsonOf(value: unknown): unknown {
  if (value instanceof Uint8Array) return base64Of(value);
  if (Array.isArray(value)) return value.map(jsonOf);
  if (typeof value === 'object' && value !== null) return argsJson(value as Record<string, unknown>);
  return value;
}

function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
