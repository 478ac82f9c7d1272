import { RaftError, RaftErrorCode } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { Agent, request } from 'undici';
import { ConclaveError, type ErrorCode, errorCatalogue } from '../errors.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCall, GroupReply } from './calls.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface ForwardLimits {
  /** Connections kept open to one peer's HTTP endpoint. */
  readonly connectionsPerPeerMax: number;
  /** A forwarded call that is not a blocking query gives up after this long (ms). */
  readonly callTimeoutMs: number;
  /** Largest reply accepted from a peer (bytes): a list can be large, but not unbounded. */
  readonly replyBytesMax: number;
  /** Calls forwarded and not yet answered, over all peers; more are refused with OVERLOADED. */
  readonly callsInFlightMax: number;
}

export const defaultForwardLimits: ForwardLimits = {
  connectionsPerPeerMax: 32,
  callTimeoutMs: 30_000,
  replyBytesMax: 256 * 1024 * 1024,
  callsInFlightMax: 8192,
};

/**
 * A blocking query is answered when its wait ends (or sooner); this much longer covers the
 * peer's reply under load before the call is given up.
 */
const blockingReplySlackMs = 60_000;

/** How long a forwarded call may take: a blocking query's own wait, plus slack. */
export function forwardTimeoutMs(call: GroupCall, limits: Pick<ForwardLimits, 'callTimeoutMs'>): number {
  const block = call.kind === 'read' ? call.read.block : null;
  return block === null ? limits.callTimeoutMs : block.waitMs + blockingReplySlackMs;
}

export const internalCallPath = (groupId: GroupId) => `/v1/internal/group/${groupId}/call`;
export const msgpackContentType = 'application/x-msgpack';

/** The same encoding on both sides; records off so the wire format is plain msgpack. */
export const callPackr = new Packr({ useRecords: false, moreTypes: false });

/** Raised when a peer could not be reached before it saw the call: safe to retry. */
export class PeerUnreachableError extends Error {
  override readonly name = 'PeerUnreachableError';
}

/**
 * Sends group calls to a peer's HTTP endpoint (msgpack in, msgpack out) and turns its
 * catalogue errors back into the same typed errors, so NOT_LEADER keeps its leaderId.
 */
export class ForwardClient {
  private readonly dispatcher: Agent;
  private callsInFlight = 0;

  constructor(private readonly limits: ForwardLimits = defaultForwardLimits) {
    this.dispatcher = new Agent({ connections: limits.connectionsPerPeerMax });
  }

  async call(options: {
    to: Address;
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    if (this.callsInFlight >= this.limits.callsInFlightMax) {
      // undici would queue without bound behind its connections: refuse instead.
      throw new ConclaveError({
        code: 'OVERLOADED',
        message: `${this.callsInFlight} forwarded calls already wait for their leaders`,
      });
    }
    this.callsInFlight++;
    try {
      return await this.send(options);
    } finally {
      this.callsInFlight--;
    }
  }

  private async send(options: {
    to: Address;
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    const { to, groupId, call } = options;
    // undici's own timers bound the call (cheaper than a timeout signal per call); a
    // blocking query's wait is the server's --blocking-wait-max at most, so it sets its own.
    const timeoutMs = forwardTimeoutMs(call, this.limits);
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(`http://${to.host}:${to.port}${internalCallPath(groupId)}`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': msgpackContentType },
        body: callPackr.pack(call),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (error) {
      if (isConnectRefused(error)) {
        throw new PeerUnreachableError(`${to.host}:${to.port} refused the connection`, { cause: error });
      }
      // The request may have reached the leader: a write may have been applied. Only a
      // read, which changes nothing, may say "retry".
      if (call.kind === 'read')
        throw forwardFailed(`forwarding to ${to.host}:${to.port} failed: ${describe(error)}`);
      throw new ConclaveError({
        code: 'TIMEOUT',
        message: `the connection to ${to.host}:${to.port}, leader of group ${groupId}, failed after the request was sent (${describe(error)}): the outcome is unknown`,
      });
    }
    const body = Buffer.from(await response.body.arrayBuffer());
    if (body.byteLength > this.limits.replyBytesMax) {
      throw forwardFailed(`a peer replied with ${body.byteLength} bytes, over ${this.limits.replyBytesMax}`);
    }
    if (response.statusCode === 200) return callPackr.unpack(body) as GroupReply;
    throw errorFromReply({ status: response.statusCode, body });
  }

  /** Abort calls still in flight (blocking queries), then close the connections. */
  async close(): Promise<void> {
    await this.dispatcher.destroy();
  }
}

function errorFromReply(options: { status: number; body: Buffer }): Error {
  let parsed: unknown;
  try {
    parsed = JSON.parse(options.body.toString('utf8'));
  } catch {
    return forwardFailed(`a peer answered HTTP ${options.status} with an unreadable body`);
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const code = typeof record.code === 'string' ? record.code : '';
  const message = typeof record.message === 'string' ? record.message : `HTTP ${options.status}`;
  if ((Object.values(RaftErrorCode) as string[]).includes(code)) {
    const leaderId = typeof record.leaderId === 'string' ? record.leaderId : null;
    return new RaftError({ code: code as RaftErrorCode, message, leaderId });
  }
  if (code in errorCatalogue) return new ConclaveError({ code: code as ErrorCode, message });
  return forwardFailed(`a peer answered HTTP ${options.status}: ${message}`);
}

function forwardFailed(message: string): ConclaveError {
  return new ConclaveError({ code: 'FORWARD_FAILED', message });
}

function isConnectRefused(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
