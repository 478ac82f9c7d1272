/**
 * The snapshot benchmark's HTTP client: Consul's KV endpoint and the operator views, one
 * undici Pool per server, so the loader, the write load and the probes never queue behind
 * each other on one connection.
 */
import { ConclaveTarget, errorBodyChars, kvPath } from './conclave-target.js';

/** A request not answered in this long fails (a 64 KiB fsynced write takes milliseconds). */
const requestTimeoutMs = 30_000;
/** Enough for the loader's requests in flight plus the write load and the probes. */
const connectionsPerServer = 64;

/** The http bench's client (put), plus raw reads, key listings and JSON views. */
export class BenchClient extends ConclaveTarget {
  constructor(readonly urls: readonly string[]) {
    super({ urls, connectionsPerServer, requestTimeoutMs });
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
}
