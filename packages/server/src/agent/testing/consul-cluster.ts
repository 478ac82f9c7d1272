/**
 * Process-level Consul harness: real `conclave agent` processes (see processes.ts) with one
 * npm `consul` (v2) client per server. That client's .d.ts leaves out options lib/*.js sends
 * (consistent, stale, index, wait, timeout, ctx) and misdescribes some results (txn ops,
 * destroy, a `false` body that papi hands back as undefined), so the client is used through
 * the views below, which describe what lib/*.js really sends and returns.
 */
import { EventEmitter } from 'node:events';
import { ProcessCluster, type ServerProcess, waitFor } from '@conclave/testkit';
import Consul from 'consul';

/** A KV entry as Consul's JSON has it, with Value decoded from base64 by the client. */
export interface KvEntryJson {
  readonly LockIndex: number;
  readonly Key: string;
  readonly Flags: number;
  readonly Value: string | null;
  readonly Session?: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

export interface SessionJson {
  readonly ID: string;
  readonly Name: string;
  readonly Node: string;
  readonly LockDelay: number;
  readonly Behavior: 'release' | 'delete';
  readonly TTL: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** Query options every read of lib/*.js passes on (utils.options). */
export interface ReadOptions {
  readonly consistent?: boolean;
  readonly stale?: boolean;
  readonly index?: number;
  /** A Go duration, e.g. "10s". */
  readonly wait?: string;
  /** The client's own deadline for this request (ms). */
  readonly timeout?: number;
}

/**
 * `consul.kv`. A body of `false` (a refused cas, lock or release) comes back as undefined:
 * papi resolves a falsy body as no value.
 */
export interface ConsulKv {
  get(options: ReadOptions & { key: string; recurse: true }): Promise<KvEntryJson[] | undefined>;
  get(options: ReadOptions & { key: string }): Promise<KvEntryJson | undefined>;
  keys(options: ReadOptions & { key: string; separator?: string }): Promise<string[]>;
  set(options: {
    key: string;
    value: string;
    flags?: number;
    cas?: number;
    acquire?: string;
    release?: string;
    timeout?: number;
  }): Promise<true | undefined>;
  del(options: { key: string; recurse?: boolean; cas?: number }): Promise<true | undefined>;
}

export interface ConsulSession {
  create(options: {
    name?: string;
    ttl?: string;
    lockdelay?: string;
    behavior?: 'release' | 'delete';
  }): Promise<{ ID: string }>;
  /** undefined when the session does not exist (Consul answers []). */
  info(options: ReadOptions & { id: string }): Promise<SessionJson | undefined>;
  list(options?: ReadOptions): Promise<SessionJson[]>;
  node(options: ReadOptions & { node: string }): Promise<SessionJson[]>;
  renew(options: { id: string }): Promise<SessionJson[]>;
  /** lib/session.js resolves nothing (utils.empty), whatever the body. */
  destroy(options: { id: string }): Promise<undefined>;
}

/** Consul's own op shape: lib/transaction.js sends the array as the body unchanged. */
export interface TxnOpJson {
  readonly KV: {
    readonly Verb: string;
    readonly Key: string;
    /** Base64, as in Consul's API. */
    readonly Value?: string;
    readonly Index?: number;
    readonly Session?: string;
    readonly Flags?: number;
  };
}

export interface TxnResultJson {
  /** Values are base64 here: the client decodes only kv.get results. */
  readonly Results: { readonly KV: KvEntryJson }[] | null;
  readonly Errors: { readonly OpIndex: number; readonly What: string }[] | null;
}

export interface ConsulTransaction {
  create(operations: readonly TxnOpJson[]): Promise<TxnResultJson>;
}

export interface ConsulStatus {
  leader(): Promise<string>;
  peers(): Promise<string[]>;
}

/** What lib/consul.js really accepts: papi takes a default per-request timeout. */
type ConsulConstructor = new (options: {
  host: string;
  port: number;
  timeout: number;
}) => {
  kv: unknown;
  session: unknown;
  transaction: unknown;
  status: unknown;
  destroy(): void;
};

/** A get answering the response too: papi does so when ctx is an emitter with includeResponse. */
type KvGetWithResponse = (options: ReadOptions & { key: string; ctx: EventEmitter }) => Promise<unknown>;

/** One npm consul client talking to one server. */
export class ConsulClient {
  readonly kv: ConsulKv;
  readonly session: ConsulSession;
  readonly transaction: ConsulTransaction;
  readonly status: ConsulStatus;
  private readonly getWithResponse: KvGetWithResponse;
  private readonly client: InstanceType<ConsulConstructor>;

  constructor(
    readonly server: ServerProcess,
    options: { requestTimeoutMs: number },
  ) {
    const port = server.spec.httpPort;
    this.client = new (Consul as unknown as ConsulConstructor)({
      host: '127.0.0.1',
      port,
      timeout: options.requestTimeoutMs,
    });
    this.kv = this.client.kv as ConsulKv;
    this.session = this.client.session as ConsulSession;
    this.transaction = this.client.transaction as ConsulTransaction;
    this.status = this.client.status as ConsulStatus;
    const kv = this.client.kv as { get: KvGetWithResponse };
    this.getWithResponse = kv.get.bind(kv);
  }

  get nodeId(): string {
    return this.server.nodeId;
  }

  /** kv.get, with the X-Consul-Index the server answered (what a blocking query waits past). */
  async getWithIndex(
    options: ReadOptions & { key: string },
  ): Promise<{ entry: KvEntryJson | undefined; index: number }> {
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const answer = await this.getWithResponse({ ...options, ctx });
    if (!Array.isArray(answer)) throw new Error(`kv.get with includeResponse answered ${String(answer)}`);
    const [response, entry] = answer as [{ headers: Record<string, unknown> }, KvEntryJson | undefined];
    const index = Number(response.headers['x-consul-index']);
    if (!Number.isSafeInteger(index) || index < 1) {
      throw new Error(`X-Consul-Index is ${String(response.headers['x-consul-index'])}`);
    }
    return { entry, index };
  }

  /** Close the keep-alive sockets. */
  destroy(): void {
    this.client.destroy();
  }
}

/** The HTTP status of a failed client call, null when none came back (timeout, reset, refused). */
export function httpStatusOf(error: unknown): number | null {
  if (typeof error !== 'object' || error === null || !('statusCode' in error)) return null;
  return typeof error.statusCode === 'number' ? error.statusCode : null;
}

/** The HTTP status a client call was refused with; fails if it succeeded. */
export async function refusalStatus(call: Promise<unknown>): Promise<number | null> {
  try {
    await call;
  } catch (error) {
    return httpStatusOf(error);
  }
  throw new Error('the call succeeded, but a refusal was expected');
}

export const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** A cluster of real processes with a consul client per server. */
export class ConsulCluster {
  private readonly clients = new Map<string, ConsulClient>();

  private constructor(
    readonly processes: ProcessCluster,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Start every server and wait until every group has one agreed, balanced leader. */
  static async start(options: {
    size: number;
    groups: number;
    tickMs: number;
    requestTimeoutMs: number;
    readyTimeoutMs: number;
  }): Promise<ConsulCluster> {
    const processes = await ProcessCluster.create(options);
    const cluster = new ConsulCluster(processes, options.requestTimeoutMs);
    try {
      await processes.startAll();
      await cluster.balancedLeaders(options.readyTimeoutMs);
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  get servers(): readonly ServerProcess[] {
    return this.processes.servers;
  }

  get groups(): number {
    return this.processes.groups;
  }

  /** The client of one server, made on first use and kept until `forget`. */
  client(nodeId: string): ConsulClient {
    let client = this.clients.get(nodeId);
    if (client === undefined) {
      client = new ConsulClient(this.processes.byId(nodeId), { requestTimeoutMs: this.requestTimeoutMs });
      this.clients.set(nodeId, client);
    }
    return client;
  }

  /** Drop a server's client (after a kill its pooled sockets are dead). */
  forget(nodeId: string): void {
    this.clients.get(nodeId)?.destroy();
    this.clients.delete(nodeId);
  }

  /**
   * Every group's leader, once every running server agrees on it and no server leads more
   * than its share: the balancer then has nothing to move, so leaders stay put while the
   * cluster is healthy.
   */
  balancedLeaders(timeoutMs: number): Promise<Map<number, string>> {
    const share = Math.ceil(this.groups / this.processes.running.length);
    return waitFor(
      async () => {
        const leaders = await this.processes.agreedLeaders();
        if (leaders === undefined) return undefined;
        const led = new Map<string, number>();
        for (const id of leaders.values()) led.set(id, (led.get(id) ?? 0) + 1);
        return [...led.values()].every((count) => count <= share) ? leaders : undefined;
      },
      { timeoutMs, intervalMs: 50, what: `every group led, no server leading more than ${share}` },
    );
  }

  async destroy(): Promise<void> {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
    await this.processes.destroy();
  }
}
