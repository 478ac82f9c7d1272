/**
 * In-process servers for service tests: each runs a multi-Raft host over a loopback Raft
 * network, a real ticker, and a fastify app on 127.0.0.1 for forwarded calls, so a request
 * to any server exercises the same routing and forwarding as a real cluster.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type ServiceRuntime, startService } from '../../agent/runtime.js';
import { sendError } from '../../api/index.js';
import type { FsmResult } from '../../fsm/index.js';
import { MultiRaftHost } from '../../host/host.js';
import { LoopbackNetwork, MemoryDurableLog } from '../../host/testing/in-memory.js';
import type { Address } from '../forward-client.js';
import { GroupMachines } from '../index.js';

export interface TestServer {
  readonly id: string;
  readonly host: MultiRaftHost<FsmResult>;
  readonly machines: GroupMachines;
  readonly runtime: ServiceRuntime;
  readonly app: FastifyInstance;
}

export interface TestCluster {
  readonly servers: readonly TestServer[];
  readonly net: LoopbackNetwork;
  server(id: string): TestServer;
  /** The server leading the group, or one that does not (for forwarding tests). */
  leaderOf(groupId: number): TestServer | undefined;
  followerOf(groupId: number): TestServer;
  close(): Promise<void>;
}

export const testTickMs = 10;

export async function startTestCluster(options: {
  size: number;
  groupCount: number;
  now?: () => number;
  /** Each server's logger (autopilot, operator commands); silent without one. */
  logger?: (id: string) => Logger;
}): Promise<TestCluster> {
  const ids = Array.from({ length: options.size }, (_, i) => `s${i + 1}`);
  const net = new LoopbackNetwork();
  const httpAddresses = new Map<string, Address>();
  const peers = {
    httpAddress: (id: string) => httpAddresses.get(id) ?? null,
    raftAddress: (id: string) => ({ host: '127.0.0.1', port: 8300 + ids.indexOf(id) + 1 }),
  };
  const servers: TestServer[] = [];
  const tickers: NodeJS.Timeout[] = [];
  for (const [i, id] of ids.entries()) {
    const machines = new GroupMachines();
    const host = new MultiRaftHost<FsmResult>({
      nodeId: id,
      groupCount: options.groupCount,
      log: new MemoryDurableLog({ groupCount: options.groupCount, voters: ids }),
      transport: net.transportFor(id),
      stateMachine: (groupId) => machines.machine(groupId),
      seed: i + 1,
      balanceIntervalTicks: 0,
    });
    net.register(id, (envelopes) => host.receive(envelopes));
    const runtime = startService({
      host,
      machines,
      peers,
      tickMs: testTickMs,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.logger === undefined ? {} : { logger: options.logger(id) }),
    });
    const app = Fastify();
    app.setErrorHandler((error, _request, reply) => sendError(reply, error));
    runtime.registerRoutes(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const bound = app.server.address();
    if (typeof bound !== 'object' || bound === null) throw new Error('fastify did not bind');
    httpAddresses.set(id, { host: '127.0.0.1', port: bound.port });
    tickers.push(setInterval(() => host.tick(), testTickMs));
    servers.push({ id, host, machines, runtime, app });
  }
  const leaderOf = (groupId: number) =>
    servers.find((s) => s.host.group(groupId).raw.status().role === 'leader');
  return {
    servers,
    net,
    server: (id) => {
      const found = servers.find((s) => s.id === id);
      if (found === undefined) throw new Error(`no server ${id}`);
      return found;
    },
    leaderOf,
    followerOf: (groupId) => {
      const follower = servers.find((s) => s.host.group(groupId).raw.status().role !== 'leader');
      if (follower === undefined) throw new Error(`every server leads group ${groupId}`);
      return follower;
    },
    async close() {
      for (const ticker of tickers) clearInterval(ticker);
      for (const server of servers) {
        server.host.stop();
        await server.runtime.close();
        await server.app.close();
      }
    },
  };
}

/** Poll until `done` holds, yielding to timers between checks; bounded. */
export async function eventually<T>(
  check: () => T | undefined | false,
  options: { timeoutMs: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${options.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, testTickMs));
  }
}
