/**
 * The benchmark's client for etcd: the `etcd3` gRPC client, one per member, so request N
 * goes to member N mod 3 exactly as it goes to Conclave server N mod 3. A linearizable
 * range stands for both Consul's default and `?consistent` reads (etcd has no lease read),
 * a serializable one (served by the member alone) for `?stale`.
 */
import { Etcd3 } from 'etcd3';
import type { KvTarget, ReadConsistency } from './kv-workload.js';

export interface EtcdTargetOptions {
  /** Each member's client URL, e.g. http://127.0.0.1:2379. */
  readonly urls: readonly string[];
  /** A request not answered in this long fails the request, not the run. */
  readonly requestTimeoutMs: number;
}

export class EtcdTarget implements KvTarget {
  private readonly clients: Etcd3[];

  constructor(options: EtcdTargetOptions) {
    if (options.urls.length === 0) throw new Error('EtcdTarget needs at least one member URL');
    this.clients = options.urls.map(
      (url) =>
        new Etcd3({
          hosts: url,
          dialTimeout: options.requestTimeoutMs,
          defaultCallOptions: (context) =>
            context.isStream ? {} : { deadline: Date.now() + options.requestTimeoutMs },
        }),
    );
  }

  get serverCount(): number {
    return this.clients.length;
  }

  async put(request: { server: number; key: string; value: Uint8Array }): Promise<void> {
    const { value } = request;
    await this.client(request.server)
      .put(request.key)
      .value(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
      .exec();
  }

  async get(request: { server: number; key: string; consistency: ReadConsistency }): Promise<void> {
    const value = await this.client(request.server)
      .get(request.key)
      .serializable(request.consistency === 'stale')
      .buffer();
    if (value === null) throw new Error(`GET ${request.key}: no such key`);
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
  }

  private client(server: number): Etcd3 {
    const client = this.clients[server];
    if (client === undefined) throw new Error(`no member ${server}; there are ${this.clients.length}`);
    return client;
  }
}
