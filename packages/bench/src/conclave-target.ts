/**
 * The benchmark's client for Conclave: Consul's KV endpoint over HTTP/1.1, one undici Pool
 * per server with a connection for every request that may be in flight, so the client never
 * queues requests behind each other.
 */
import { Pool } from 'undici';
import type { KvTarget, ReadConsistency } from './kv-workload.js';

export interface ConclaveTargetOptions {
  /** Each server's HTTP base URL, e.g. http://127.0.0.1:8501. */
  readonly urls: readonly string[];
  /** Connections opened at most to one server; at least the requests in flight. */
  readonly connectionsPerServer: number;
  /** A request not answered in this long fails the request, not the run. */
  readonly requestTimeoutMs: number;
}

/** What a GET adds to the key's path for each consistency, as in Consul. */
const readQuery: Readonly<Record<ReadConsistency, string>> = {
  default: '',
  consistent: '?consistent',
  stale: '?stale',
};

/** A response body longer than this is not a single 256-byte entry: read only its head. */
export const errorBodyChars = 300;

export class ConclaveTarget implements KvTarget {
  private readonly pools: Pool[];

  constructor(options: ConclaveTargetOptions) {
    if (options.urls.length === 0) throw new Error('ConclaveTarget needs at least one server URL');
    this.pools = options.urls.map(
      (url) =>
        new Pool(url, {
          connections: options.connectionsPerServer,
          pipelining: 1,
          headersTimeout: options.requestTimeoutMs,
          bodyTimeout: options.requestTimeoutMs,
        }),
    );
  }

  get serverCount(): number {
    return this.pools.length;
  }

  async put(request: { server: number; key: string; value: Uint8Array }): Promise<void> {
    const { statusCode, body } = await this.pool(request.server).request({
      method: 'PUT',
      path: kvPath(request.key),
      headers: { 'content-type': 'application/octet-stream' },
      body: request.value,
    });
    const text = await body.text();
    if (statusCode !== 200 || text.trim() !== 'true') {
      throw new Error(`PUT ${request.key}: HTTP ${statusCode} ${text.slice(0, errorBodyChars)}`);
    }
  }

  async get(request: { server: number; key: string; consistency: ReadConsistency }): Promise<void> {
    const { statusCode, body } = await this.pool(request.server).request({
      method: 'GET',
      path: `${kvPath(request.key)}${readQuery[request.consistency]}`,
    });
    // The whole JSON entry is read, as a Consul client would, before the request counts.
    const text = await body.text();
    if (statusCode !== 200) {
      throw new Error(`GET ${request.key}: HTTP ${statusCode} ${text.slice(0, errorBodyChars)}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.close()));
  }

  protected pool(server: number): Pool {
    const pool = this.pools[server];
    if (pool === undefined) throw new Error(`no server ${server}; there are ${this.pools.length}`);
    return pool;
  }
}

/** Each segment escaped, the slashes kept: the key's path is the URL's path. */
export function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}
