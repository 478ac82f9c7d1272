import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent } from 'undici';
import { ConclaveClientError, errorFromAnswer } from './errors.js';

/** Bounds on a snapshot transfer, which may be large and slow: one deadline for the whole. */
export interface SnapshotTransferLimits {
  /** The whole save or restore, connect to last byte, ms. */
  readonly transferTimeoutMs: number;
  /** Largest error answer read (bytes); a snapshot body itself is streamed, never held. */
  readonly errorBytesMax: number;
}

export const defaultSnapshotTransferLimits: SnapshotTransferLimits = {
  transferTimeoutMs: 30 * 60_000,
  errorBytesMax: 64 * 1024,
};

export interface RestoreAnswer {
  readonly clusterId: string;
  readonly createdAt: string;
  readonly groups: readonly { groupId: number; index: number; keys: number }[];
}

/**
 * `GET /v1/snapshot` and `PUT /v1/snapshot`, streamed: the archive goes from the socket to
 * `sink` (and from `source` to the socket) without being held in memory. Never retried:
 * a restore may have replaced groups before it failed, and a save is cheap to run again.
 */
export class SnapshotClient {
  private readonly limits: SnapshotTransferLimits;
  private readonly dispatcher = new Agent();

  constructor(
    private readonly baseUrl: string,
    limits: Partial<SnapshotTransferLimits> = {},
  ) {
    this.limits = { ...defaultSnapshotTransferLimits, ...limits };
  }

  /** Streams an archive into `sink`; the X-Consul-Index and the bytes written. */
  async save(options: {
    sink: Writable;
    stale: boolean;
    onBytes?: (total: number) => void;
  }): Promise<{ index: number; bytes: number }> {
    const signal = AbortSignal.timeout(this.limits.transferTimeoutMs);
    const response = await this.request({
      method: 'GET',
      path: `/v1/snapshot${options.stale ? '?stale' : ''}`,
      signal,
    });
    if (response.statusCode !== 200) throw await this.failure(response);
    let bytes = 0;
    response.body.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      options.onBytes?.(bytes);
    });
    await pipeline(response.body, options.sink, { signal });
    const header = response.headers['x-consul-index'];
    return { index: typeof header === 'string' ? Number(header) : 0, bytes };
  }

  /** Sends an archive; the groups it replaced. */
  async restore(options: { source: Readable; bytes: number }): Promise<RestoreAnswer> {
    const signal = AbortSignal.timeout(this.limits.transferTimeoutMs);
    const response = await this.request({
      method: 'PUT',
      path: '/v1/snapshot',
      signal,
      body: options.source,
      headers: { 'content-type': 'application/x-gzip', 'content-length': String(options.bytes) },
    });
    if (response.statusCode !== 200) throw await this.failure(response);
    const answer = JSON.parse(Buffer.from(await response.body.arrayBuffer()).toString('utf8')) as unknown;
    if (
      typeof answer !== 'object' ||
      answer === null ||
      !('groups' in answer) ||
      !Array.isArray(answer.groups)
    ) {
      throw new ConclaveClientError({ code: 'BAD_RESPONSE', message: 'the restore answer names no groups' });
    }
    return answer as RestoreAnswer;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async request(options: {
    method: 'GET' | 'PUT';
    path: string;
    signal: AbortSignal;
    body?: Readable;
    headers?: Record<string, string>;
  }) {
    try {
      return await this.dispatcher.request({
        origin: this.baseUrl,
        path: options.path,
        method: options.method,
        signal: options.signal,
        headersTimeout: this.limits.transferTimeoutMs,
        bodyTimeout: this.limits.transferTimeoutMs,
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.headers === undefined ? {} : { headers: options.headers }),
      });
    } catch (error) {
      throw new ConclaveClientError({
        code: 'CONNECTION_FAILED',
        message: `cannot reach ${this.baseUrl}: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }

  private async failure(response: { statusCode: number; body: Readable }): Promise<ConclaveClientError> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of response.body) {
      total += (chunk as Buffer).length;
      if (total > this.limits.errorBytesMax) break;
      chunks.push(chunk as Buffer);
    }
    response.body.destroy();
    return errorFromAnswer({ status: response.statusCode, body: Buffer.concat(chunks) });
  }
}
