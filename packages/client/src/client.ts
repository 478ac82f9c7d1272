import { type CallOptions, signalOf } from './call.js';
import * as decode from './decode.js';
import { ConclaveClientError } from './errors.js';
import { type HttpCall, type HttpLimits, HttpTransport } from './http.js';
import { OperatorClient } from './operator.js';
import { type PrimitiveAnswer, type PrimitiveCall, sendPrimitive } from './primitive.js';
import type {
  AgentSelf,
  KvPair,
  RaftConfiguration,
  ReadOptions,
  ReadResult,
  SessionCreateOptions,
  SessionInfo,
  TxnOp,
  TxnResult,
} from './types.js';

/**
 * Where the servers are: one `address`, or several `addresses` of one cluster to fail over
 * between (each `host:port` or `http://host:port`).
 */
export type ClientOptions = (
  | { readonly address: string; readonly addresses?: never }
  | { readonly addresses: readonly string[]; readonly address?: never }
) & {
  readonly limits?: Partial<HttpLimits>;
};

/** Largest wait a client asks for: Consul's own cap, so a caller's typo cannot block for hours. */
export const blockingWaitMaxMs = 10 * 60_000;

/**
 * A client of Conclave's Consul-compatible HTTP API. Reads take ReadOptions (consistency,
 * blocking `index`/`waitMs`, an AbortSignal) and return the value with the X-Consul-*
 * metadata; failures are ConclaveClientError with the server's code, message and advice.
 * Call `close()` when done, or idle keep-alive connections hold the process open for
 * `keepAliveMs`.
 */
export class ConclaveClient {
  private readonly http: HttpTransport;
  /** The operator endpoints: cluster, group and member status, remove-peer, transfer-leader. */
  readonly operator: OperatorClient;

  constructor(options: ClientOptions) {
    const addresses = options.addresses ?? (options.address === undefined ? [] : [options.address]);
    this.http = new HttpTransport({
      baseUrls: addresses.map(baseUrlOf),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    this.operator = new OperatorClient(this.http);
  }

  /** The server calls go to now (it moves on when one fails). */
  get baseUrl(): string {
    return this.http.baseUrl;
  }

  async kvGet(key: string, options: ReadOptions = {}): Promise<ReadResult<KvPair | null>> {
    const answer = await this.http.send(readCall(kvPath(key), {}, options));
    const meta = decode.readMeta(answer);
    if (answer.status === 404) return { value: null, meta };
    const entries = decode.kvPairs(decode.parseJson(answer));
    return { value: entries[0] ?? null, meta };
  }

  /** Every entry under `prefix`, sorted by key; [] when none. */
  async kvList(prefix: string, options: ReadOptions = {}): Promise<ReadResult<KvPair[]>> {
    const answer = await this.http.send(readCall(kvPath(prefix), { recurse: true }, options));
    const meta = decode.readMeta(answer);
    if (answer.status === 404) return { value: [], meta };
    return { value: decode.kvPairs(decode.parseJson(answer)), meta };
  }

  /** Keys under `prefix`; with a separator, keys past it roll up to `prefix…separator`. */
  async kvKeys(
    prefix: string,
    options: ReadOptions & { separator?: string } = {},
  ): Promise<ReadResult<string[]>> {
    const query = {
      keys: true as const,
      separator: options.separator === '' ? undefined : options.separator,
    };
    const answer = await this.http.send(readCall(kvPath(prefix), query, options));
    const meta = decode.readMeta(answer);
    if (answer.status === 404) return { value: [], meta };
    return { value: decode.stringList(decode.parseJson(answer), 'key list'), meta };
  }

  /**
   * Set a key. With `cas`, `acquire` or `release` (at most one) the answer says whether
   * it was written; a plain set always is.
   */
  async kvPut(options: {
    key: string;
    value: Uint8Array | string;
    flags?: number;
    cas?: number;
    acquire?: string;
    release?: string;
    signal?: AbortSignal;
  }): Promise<boolean> {
    const answer = await this.http.send({
      method: 'PUT',
      path: kvPath(options.key),
      query: { flags: options.flags, cas: options.cas, acquire: options.acquire, release: options.release },
      body: options.value,
      ...signalOf(options),
    });
    return expectBoolean(decode.parseJson(answer));
  }

  /** Delete a key, or every key under it with `recurse`; with `cas`, only at that ModifyIndex. */
  async kvDelete(options: {
    key: string;
    recurse?: boolean;
    cas?: number;
    signal?: AbortSignal;
  }): Promise<boolean> {
    const answer = await this.http.send({
      method: 'DELETE',
      path: kvPath(options.key),
      query: { recurse: options.recurse === true ? true : undefined, cas: options.cas },
      ...signalOf(options),
    });
    return expectBoolean(decode.parseJson(answer));
  }

  /** All the ops apply or none does; a failed check is `{ok: false, errors}`, not a throw. */
  async txn(ops: readonly TxnOp[], options: CallOptions = {}): Promise<TxnResult> {
    const body = JSON.stringify(ops.map(txnOpJson));
    const answer = await this.http.send({
      method: 'PUT',
      path: '/v1/txn',
      body,
      accept: [409],
      ...signalOf(options),
    });
    return decode.txnResult(decode.parseJson(answer), answer.status);
  }

  async sessionCreate(options: SessionCreateOptions = {}): Promise<string> {
    const body = JSON.stringify({
      Name: options.name,
      Node: options.node,
      TTL: options.ttlSeconds === undefined ? undefined : `${options.ttlSeconds}s`,
      Behavior: options.behavior,
      LockDelay: options.lockDelayMs === undefined ? undefined : `${options.lockDelayMs}ms`,
    });
    const answer = await this.http.send({
      method: 'PUT',
      path: '/v1/session/create',
      body,
      ...signalOf(options),
    });
    const parsed = decode.parseJson(answer);
    const id = typeof parsed === 'object' && parsed !== null && 'ID' in parsed ? parsed.ID : undefined;
    return decode.text(id, 'session create ID');
  }

  /** Destroying releases (or deletes) every key the session holds. Idempotent. */
  async sessionDestroy(id: string, options: CallOptions = {}): Promise<boolean> {
    const path = `/v1/session/destroy/${segment(id)}`;
    const answer = await this.http.send({ method: 'PUT', path, ...signalOf(options) });
    return expectBoolean(decode.parseJson(answer));
  }

  /** Restart the session's TTL; null when the session no longer exists. */
  async sessionRenew(id: string, options: CallOptions = {}): Promise<SessionInfo | null> {
    const path = `/v1/session/renew/${segment(id)}`;
    const answer = await this.http.send({ method: 'PUT', path, accept: [404], ...signalOf(options) });
    if (answer.status === 404) return null;
    const list = decode.array(decode.parseJson(answer), 'session renew answer');
    return list.length === 0 ? null : decode.sessionInfo(list[0]);
  }

  async sessionInfo(id: string, options: ReadOptions = {}): Promise<ReadResult<SessionInfo | null>> {
    const answer = await this.http.send(readCall(`/v1/session/info/${segment(id)}`, {}, options));
    const list = decode.array(decode.parseJson(answer), 'session info answer');
    return { value: list.length === 0 ? null : decode.sessionInfo(list[0]), meta: decode.readMeta(answer) };
  }

  /**
   * One coordination primitive call, on the wire (`connect()` gives typed handles instead).
   * Reads and writes with a `seq` are retried on any retryable failure; other writes only
   * when no server can have applied them.
   */
  async primitive(call: PrimitiveCall): Promise<PrimitiveAnswer> {
    return sendPrimitive(this.http, call);
  }

  /** Group 0's leader, as a Raft address; '' when none is known. */
  async statusLeader(options: CallOptions = {}): Promise<string> {
    const answer = await this.http.send({ method: 'GET', path: '/v1/status/leader', ...signalOf(options) });
    return decode.text(decode.parseJson(answer), 'status/leader');
  }

  /** Group 0's voters, as Raft addresses. */
  async statusPeers(options: CallOptions = {}): Promise<string[]> {
    const answer = await this.http.send({ method: 'GET', path: '/v1/status/peers', ...signalOf(options) });
    return decode.stringList(decode.parseJson(answer), 'status/peers');
  }

  async raftConfiguration(options: { groupId?: number } & CallOptions = {}): Promise<RaftConfiguration> {
    const answer = await this.http.send({
      method: 'GET',
      path: '/v1/operator/raft/configuration',
      query: { group: options.groupId },
      ...signalOf(options),
    });
    return decode.raftConfiguration(decode.parseJson(answer));
  }

  async agentSelf(options: CallOptions = {}): Promise<AgentSelf> {
    const answer = await this.http.send({ method: 'GET', path: '/v1/agent/self', ...signalOf(options) });
    return decode.agentSelf(decode.parseJson(answer));
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

/** `host:port`, `[v6]:port` or an http(s) URL, as a base URL. */
export function baseUrlOf(address: string): string {
  const withScheme = /^https?:\/\//i.test(address) ? address : `http://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConclaveClientError({
      code: 'USAGE',
      message: `not an HTTP address: ${JSON.stringify(address)}`,
    });
  }
  if (url.port === '' || url.pathname !== '/' || url.search !== '') {
    throw new ConclaveClientError({
      code: 'USAGE',
      message: `the HTTP address must be host:port, got ${JSON.stringify(address)}`,
    });
  }
  return url.origin;
}

/**
 * A key as a URL path. Each byte that is not unreserved is percent-encoded, '/' excepted,
 * so keys holding '?', '#', '%' or spaces reach the server intact.
 */
export function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(segment).join('/')}`;
}

function segment(text: string): string {
  return encodeURIComponent(text);
}

function readCall(path: string, query: NonNullable<HttpCall['query']>, options: ReadOptions): HttpCall {
  const index = options.index ?? 0;
  const blocking = index > 0;
  const waitMs = blocking ? Math.min(options.waitMs ?? blockingWaitMaxMs, blockingWaitMaxMs) : undefined;
  return {
    method: 'GET',
    path,
    query: {
      ...query,
      consistent: options.consistency === 'consistent' ? true : undefined,
      stale: options.consistency === 'stale' ? true : undefined,
      index: blocking ? index : undefined,
      wait: waitMs === undefined ? undefined : `${waitMs}ms`,
    },
    accept: [404],
    ...(waitMs === undefined ? {} : { waitMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
}

function expectBoolean(value: unknown): boolean {
  if (typeof value !== 'boolean') throw decodeBooleanError(value);
  return value;
}

function decodeBooleanError(value: unknown): ConclaveClientError {
  return new ConclaveClientError({
    code: 'BAD_RESPONSE',
    message: `expected true or false, got ${JSON.stringify(value)?.slice(0, 80)}`,
  });
}

function txnOpJson(op: TxnOp) {
  return {
    KV: {
      Verb: op.verb,
      Key: op.key,
      ...(op.value === undefined ? {} : { Value: Buffer.from(op.value).toString('base64') }),
      ...(op.flags === undefined ? {} : { Flags: op.flags }),
      ...(op.index === undefined ? {} : { Index: op.index }),
      ...(op.session === undefined ? {} : { Session: op.session }),
    },
  };
}
