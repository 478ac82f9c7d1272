/**
 * The snapshot benchmark's HTTP client: Consul's KV endpoint and the operator views, one
 * undici Pool per server, so the loader, the write load and the probes never queue behind
 * each other on one connection.
 */
import { Pool } from 'undici';

/** A request not answered in this long fails (a 64 KiB fsynced write takes milliseconds). */
const requestTimeoutMs = 30_000;
/** Enough for the loader's requests in flight plus the write load and the probes. */
const connectionsPerServer = 64;
/** Of an unexpected answer, the head is enough to explain it. */
const errorBodyChars = 300;

export class BenchClient {
  private readonly pools: Pool[];

  constructor(readonly urls: readonly string[]) {
    if (urls.length === 0) throw new Error('BenchClient needs at least one server URL');
    this.pools = urls.map(
      (url) =>
        new Pool(url, {
          connections: connectionsPerServer,
          pipelining: 1,
          headersTimeout: requestTimeoutMs,
          bodyTimeout: requestTimeoutMs,
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

  /** The stored bytes, or null when the key does not exist. */
  async getRaw(request: { server: number; key: string }): Promise<Buffer | null> {
    const { statusCode, body } = await this.pool(request.server).request({
      method: 'GET',
      path: `${kvPath(request.key)}?raw`,
    });
    const bytes = Buffer.from(await body.arrayBuffer());
    if (statusCode === 404) return null;
    if (statusCode !== 200) {
      throw new Error(`GET ${request.key}: HTTP ${statusCode} ${bytes.toString('utf8', 0, errorBodyChars)}`);
    }
    return bytes;
  }

  /** Every key in the store (`GET /v1/kv/?keys`). */
  async allKeys(server: number): Promise<string[]> {
    const keys = await this.json({ server, path: '/v1/kv/?keys' });
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
      throw new Error(`GET /v1/kv/?keys answered ${JSON.stringify(keys).slice(0, errorBodyChars)}`);
    }
    return keys as string[];
  }

  async json(request: { server: number; path: string }): Promise<unknown> {
    const { statusCode, body } = await this.pool(request.server).request({
      method: 'GET',
      path: request.path,
    });
    const text = await body.text();
    if (statusCode !== 200) {
      throw new Error(`GET ${request.path}: HTTP ${statusCode} ${text.slice(0, errorBodyChars)}`);
    }
    return JSON.parse(text);
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.close()));
  }

  private pool(server: number): Pool {
    const pool = this.pools[server];
    if (pool === undefined) throw new Error(`no server ${server}; there are ${this.pools.length}`);
    return pool;
  }
}

/** Each segment escaped, the slashes kept: the key's path is the URL's path. */
function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}
