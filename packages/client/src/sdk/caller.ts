import type { PrimitiveKind } from '@conclave/protocol';
import type { CallOptions } from '../call.js';
import type { ConclaveClient } from '../client.js';
import { ConclaveClientError } from '../errors.js';
import type { PrimitiveAnswer } from '../primitive.js';
import type { Consistency } from '../types.js';
import { withSignal } from './abort.js';
import { type ConclaveSession, closedError, type Lease } from './session.js';

/** A read's options: an AbortSignal, and the read mode (default: the group leader's state). */
export interface ReadCallOptions extends CallOptions {
  readonly consistency?: Consistency;
}

/**
 * A write's options.
 *
 * `session` (default true): the write carries the connection's session and that session's
 * next sequence number, and is retried with the same number after any retryable failure
 * (a connection lost before the answer, a server down, NOT_LEADER, NO_LEADER,
 * FORWARD_FAILED, TIMEOUT, SHUTTING_DOWN), failing over across the servers: the server
 * applies it exactly once and answers every retry with the first result. It opens the
 * session if none is open.
 *
 * `session: false`: no session, so no deduplication: the write is retried only while no
 * server can have applied it (the connection was refused, or the server refused it before
 * proposing it). Once the request may have reached a server, a failure is reported with
 * the outcome unknown (CONNECTION_FAILED, TIMEOUT): at most once. Ephemeral writes need
 * the session.
 *
 * Aborting `signal` ends the wait for the answer; the write may still apply.
 */
export interface WriteCallOptions extends CallOptions {
  readonly session?: boolean;
}

/** Where a handle's calls go. */
export interface PrimitiveTarget {
  readonly kind: PrimitiveKind;
  readonly name: string;
}

/** A blocking read's position and wait, and which group a page comes from. */
export interface ReadPlacement {
  readonly index?: number;
  readonly waitMs?: number;
  readonly group?: number;
}

/**
 * The handles' one way to the server: writes with the session's seq (exactly once) or
 * without a session (at most once), and reads; the transport under ConclaveClient retries
 * and fails over. A write answered SESSION_EXPIRED ends the session for the SDK.
 */
export class PrimitiveCaller {
  constructor(
    readonly client: ConclaveClient,
    readonly session: ConclaveSession,
  ) {}

  async write(
    target: PrimitiveTarget,
    op: string,
    args: Readonly<Record<string, unknown>>,
    options: WriteCallOptions & { readonly lease?: Lease },
  ): Promise<PrimitiveAnswer> {
    if (this.session.closed) throw closedError();
    if (options.session === false && options.lease === undefined) {
      if (args.ephemeral === true) {
        throw new ConclaveClientError({
          code: 'USAGE',
          message: `${target.kind} ${op} with ephemeral binds the entry to the session: leave session on`,
        });
      }
      return this.client.primitive({ ...target, op, args, ...withSignal(options.signal) });
    }
    const lease = options.lease ?? (await this.session.lease(options.signal));
    lease.check();
    try {
      return await this.client.primitive({
        ...target,
        op,
        args,
        session: lease.id,
        seq: lease.nextSeq(),
        ...withSignal(options.signal),
      });
    } catch (error) {
      if (error instanceof ConclaveClientError && error.code === 'SESSION_EXPIRED') {
        this.session.lost(lease, error);
      }
      throw error;
    }
  }

  async read(
    target: PrimitiveTarget,
    op: string,
    args: Readonly<Record<string, unknown>>,
    options: ReadCallOptions & ReadPlacement,
  ): Promise<PrimitiveAnswer> {
    if (this.session.closed) throw closedError();
    return this.client.primitive({
      ...target,
      op,
      args,
      ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
      ...(options.index === undefined ? {} : { index: options.index }),
      ...(options.waitMs === undefined ? {} : { waitMs: options.waitMs }),
      ...(options.group === undefined ? {} : { group: options.group }),
      ...withSignal(options.signal),
    });
  }
}

/** True when `error` is a ConclaveClientError with this code. */
export function isCode(error: unknown, code: ConclaveClientError['code']): boolean {
  return error instanceof ConclaveClientError && error.code === code;
}

/**
 * True when the server answered the call with a refusal (a 4xx status): a write refused
 * so was not applied. Anything else (no answer, a 5xx) leaves a write's outcome unknown.
 */
export function isRefusal(error: unknown): boolean {
  return error instanceof ConclaveClientError && error.httpStatus !== null && error.httpStatus < 500;
}
