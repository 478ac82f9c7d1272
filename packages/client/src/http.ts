import { setTimeout as delay } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { ConclaveClientError, errorFromAnswer } from './errors.js';

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** Bounds on every call. All positive integers. */
export interface HttpLimits {
  /** One attempt of a call that does not block (connect, send, answer), ms. */
  readonly requestTimeoutMs: number;
  /** Attempts per call, the first included. */
  readonly attemptsMax: number;
  /** The first retry's delay; each next one doubles, up to retryDelayMaxMs. */
  readonly retryDelayMs: number;
  readonly retryDelayMaxMs: number;
  /** Largest answer body read; a larger one fails with BAD_RESPONSE. */
  readonly responseBytesMax: number;
  /** Idle keep-alive connections to the server are closed after this long, ms. */
  readonly keepAliveMs: number;
}

export const defaultHttpLimits: HttpLimits = {
  requestTimeoutMs: 15_000,
  attemptsMax: 4,
  retryDelayMs: 100,
  retryDelayMaxMs: 2_000,
  responseBytesMax: 64 * 1024 * 1024,
  keepAliveMs: 10_000,
};

export interface HttpCall {
  readonly method: HttpMethod;
  /** The path, already percent-encoded (e.g. `/v1/kv/a%20b`). */
  readonly path: string;
  /** `true` sends a flag (`?recurse`); undefined leaves the parameter out. */
  readonly query?: Readonly<Record<string, string | number | true | undefined>>;
  readonly body?: Uint8Array | string;
  /** Statuses the caller reads itself (e.g. a 404 that means "no such key"); 2xx always are. */
  readonly accept?: readonly number[];
  /** A blocking query's wait: the attempt may take this much longer, ms. */
  readonly waitMs?: number;
  /** Aborting ends the call at once; the call then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Running the call twice does no harm: a read, or a write the server answers once however
   * often it arrives (a primitive write with its session's seq). Such a call is retried
   * after any retryable failure, even one after which the request may have reached the
   * server. Default: GET calls only.
   */
  readonly repeatable?: boolean;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/**
 * Codes a server answers before it has changed anything: any call may be retried on them.
 * TIMEOUT, SHUTTING_DOWN and FORWARD_FAILED may come after a write was proposed, so only
 * repeatable calls (reads, deduplicated writes) are retried on those.
 */
const refusedCodes = new Set([
  'NOT_LEADER',
  'NO_LEADER',
  'TRANSFER_IN_PROGRESS',
  'OVERLOADED',
  'UNCOMMITTED_BYTES_EXCEEDED',
  'READ_INDEX_QUEUE_FULL',
]);
const unknownOutcomeCodes = new Set(['TIMEOUT', 'SHUTTING_DOWN', 'FORWARD_FAILED']);

/** Socket errors raised before the request could have reached the server. */
const notSentCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Most servers one client fails over between. */
export const serverAddressesMax = 64;

/**
 * HTTP to a cluster's servers: bounded attempts with exponential backoff, a deadline per
 * attempt, bounded answers, and errors as ConclaveClientError. Calls go to one server
 * until an attempt there fails; the retry then goes to the next server in the list, so a
 * dead or partitioned server costs one attempt, not the call. Any server serves any call
 * (it forwards to the group's leader), so no attempt needs to find a leader. A write is
 * retried only when no server can have applied it (the connection was never made, or the
 * server refused it with one of `refusedCodes`), so a retried cas or acquire never runs
 * twice; a call marked `repeatable` (the server deduplicates it) is retried like a read.
 */
export class HttpTransport {
  private readonly baseUrls: readonly string[];
  private current = 0;
  private readonly limits: HttpLimits;
  private readonly dispatcher: Agent;

  constructor(options: { baseUrls: readonly string[]; limits?: Partial<HttpLimits> }) {
    if (options.baseUrls.length === 0 || options.baseUrls.length > serverAddressesMax) {
      throw new ConclaveClientError({
        code: 'USAGE',
        message: `name between 1 and ${serverAddressesMax} server addresses, not ${options.baseUrls.length}`,
      });
    }
    this.baseUrls = options.baseUrls.map((url) => url.replace(/\/+$/, ''));
    this.limits = checkLimits({ ...defaultHttpLimits, ...options.limits });
    this.dispatcher = new Agent({
      keepAliveTimeout: this.limits.keepAliveMs,
      keepAliveMaxTimeout: this.limits.keepAliveMs,
    });
  }

  /** The server calls go to now: the first one, until an attempt there fails. */
  get baseUrl(): string {
    return this.baseUrls[this.current] ?? this.baseUrls[0] ?? '';
  }

  /** Every server this transport fails over between, in the order given. */
  get servers(): readonly string[] {
    return this.baseUrls;
  }

  async send(call: HttpCall): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.limits.attemptsMax;
      let answer: HttpAnswer;
      try {
        answer = await this.attempt(call);
      } catch (error) {
        call.signal?.throwIfAborted();
        const failure = socketFailure(error, { call, timeoutMs: this.attemptTimeoutMs(call) });
        if (last || !failure.retry) throw failure.error;
        await this.failOver(attempt, call.signal);
        continue;
      }
      if ((answer.status >= 200 && answer.status < 300) || call.accept?.includes(answer.status))
        return answer;
      const error = errorFromAnswer(answer);
      if (last || !retryableCode(error.code, isRepeatable(call))) throw error;
      await this.failOver(attempt, call.signal);
    }
  }

  /** Before a retry: move on to the next server, and back off once every one was tried. */
  private async failOver(attempt: number, signal: AbortSignal | undefined): Promise<void> {
    this.current = (this.current + 1) % this.baseUrls.length;
    if (attempt % this.baseUrls.length === 0) await this.backoff(attempt / this.baseUrls.length, signal);
  }

  /** Close idle connections; calls still running finish first. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private attemptTimeoutMs(call: HttpCall): number {
    // A blocking query is answered after its wait plus Consul's jitter of up to wait/16.
    const waitMs = call.waitMs ?? 0;
    return this.limits.requestTimeoutMs + waitMs + Math.ceil(waitMs / 16);
  }

  private async attempt(call: HttpCall): Promise<HttpAnswer> {
    const timeoutMs = this.attemptTimeoutMs(call);
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = call.signal === undefined ? deadline : AbortSignal.any([call.signal, deadline]);
    const options: Dispatcher.RequestOptions = {
      origin: this.baseUrl,
      path: withQuery(call.path, call.query),
      method: call.method,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(call.body === undefined ? {} : { body: call.body }),
    };
    // The dispatcher, not undici's request(url): a URL would fold `..` and `.` segments of a key.
    const response = await this.dispatcher.request(options);
    const body = await readBounded(response.body, this.limits.responseBytesMax);
    return { status: response.statusCode, headers: response.headers, body };
  }

  private async backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
    const ms = Math.min(this.limits.retryDelayMaxMs, this.limits.retryDelayMs * 2 ** (attempt - 1));
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  }
}

function checkLimits(limits: HttpLimits): HttpLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ConclaveClientError({
        code: 'CONFIG_INVALID',
        message: `${name} must be a positive integer`,
      });
    }
  }
  return limits;
}

function retryableCode(code: string, repeatable: boolean): boolean {
  return refusedCodes.has(code) || (repeatable && unknownOutcomeCodes.has(code));
}

function isRepeatable(call: HttpCall): boolean {
  return call.repeatable ?? call.method === 'GET';
}

function withQuery(path: string, query: HttpCall['query']): string {
  if (query === undefined) return path;
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    // A flag is sent bare: Consul reads `?recurse` by presence.
    parts.push(value === true ? name : `${name}=${encodeURIComponent(String(value))}`);
  }
  return parts.length === 0 ? path : `${path}?${parts.join('&')}`;
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, bytesMax: number) {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > bytesMax) {
      body.destroy();
      throw new ConclaveClientError({
        code: 'BAD_RESPONSE',
        message: `the answer is larger than responseBytesMax (${bytesMax} bytes)`,
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** What a thrown request error means for the call: its error, and whether to try again. */
function socketFailure(
  error: unknown,
  options: { call: HttpCall; timeoutMs: number },
): { error: ConclaveClientError; retry: boolean } {
  if (error instanceof ConclaveClientError) return { error, retry: false };
  const { call, timeoutMs } = options;
  const repeatable = isRepeatable(call);
  const where = `${call.method} ${call.path.split('?')[0] ?? ''}`;
  if (isTimeout(error)) {
    const message = `${where}: no answer within ${timeoutMs} ms`;
    return { error: new ConclaveClientError({ code: 'TIMEOUT', message }), retry: repeatable };
  }
  const codes = errorCodes(error);
  const code = codes[0] ?? null;
  const detail = error instanceof Error ? error.message || code : String(error);
  const notSent = codes.find((c) => notSentCodes.has(c));
  if (notSent !== undefined) {
    const message = `${where}: cannot connect (${notSent}: ${detail})`;
    return { error: new ConclaveClientError({ code: 'CONNECTION_FAILED', message }), retry: true };
  }
  // The request may have reached the server: a write's outcome is unknown.
  const outcome = repeatable ? '' : '; the write may or may not have been applied';
  const message = `${where}: the connection failed (${code ?? 'error'}: ${detail})${outcome}`;
  return { error: new ConclaveClientError({ code: 'CONNECTION_FAILED', message }), retry: repeatable };
}

function isTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const codes = errorCodes(error);
  return (
    error.name === 'TimeoutError' ||
    codes.includes('UND_ERR_HEADERS_TIMEOUT') ||
    codes.includes('UND_ERR_BODY_TIMEOUT')
  );
}

/** The codes of the error and of its causes, outermost first (undici wraps socket errors). */
function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  const causesMax = 4;
  let current = error;
  for (let depth = 0; depth < causesMax && typeof current === 'object' && current !== null; depth++) {
    if ('code' in current && typeof current.code === 'string') codes.push(current.code);
    current = 'cause' in current ? current.cause : null;
  }
  return codes;
}
