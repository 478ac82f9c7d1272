/**
 * One in-process server leading every group, with the agent's HTTP app over the real
 * service, state machines and metrics (no socket, no disk): the whole API short of the
 * network, for inject() tests.
 */
import { createHistogram } from 'node:perf_hooks';
import { type Logger, pino } from 'pino';
import { afterEach } from 'vitest';
import type { FsmLimits, FsmResult } from '../../fsm/index.js';
import { MultiRaftHost } from '../../host/host.js';
import { LoopbackNetwork, MemoryDurableLog } from '../../host/testing/in-memory.js';
import { hostEvents, Metrics } from '../../metrics/index.js';
import { GroupMachines } from '../../service/index.js';
import { type ConfigInput, resolveAgentConfig } from '../config.js';
import { buildHttpApp } from '../http.js';
import { startService } from '../runtime.js';

export const singleServerGroupCount = 4;

export interface SingleServerOptions {
  groupCount?: number;
  fsmLimits?: Partial<FsmLimits>;
  /** Agent settings on top of --dev (the API's limits, for one). */
  config?: ConfigInput;
  /** Where the server logs (host events, HTTP, service); silent without one. */
  logger?: Logger;
}

export async function startSingleServer(options: SingleServerOptions = {}) {
  const groupCount = options.groupCount ?? singleServerGroupCount;
  const machines = new GroupMachines(options.fsmLimits);
  const metrics = new Metrics();
  const logger = options.logger ?? pino({ level: 'silent' });
  const host = new MultiRaftHost<FsmResult>({
    nodeId: 'dev',
    groupCount,
    log: new MemoryDurableLog({ groupCount, voters: ['dev'] }),
    transport: new LoopbackNetwork().transportFor('dev'),
    stateMachine: (groupId) => machines.machine(groupId),
    seed: 1,
    observer: hostEvents({ metrics, logger }),
  });
  for (let g = 0; g < groupCount; g++) host.group(g).raw.campaign();
  host.runTurns();
  const raftAddress = { host: '127.0.0.1', port: 8300 };
  const service = startService({
    host,
    machines,
    peers: { httpAddress: () => null, raftAddress: (id) => (id === 'dev' ? raftAddress : null) },
    tickMs: 10,
    logger,
  });
  const lag = createHistogram();
  metrics.observeSources({ host, machines, lag });
  const app = buildHttpApp({
    config: resolveAgentConfig([{ dev: true, groups: groupCount }, options.config ?? {}]),
    host,
    machines,
    service,
    raftAddress,
    logger,
    lag,
    metrics,
  });
  return {
    app,
    host,
    service,
    metrics,
    async stop() {
      await service.close();
      host.stop();
      await app.close();
    },
  };
}

export type SingleServer = Awaited<ReturnType<typeof startSingleServer>>;

/** A fresh single server per test: call the returned function in a test; it is stopped after it. */
export function singleServerPerTest(options: SingleServerOptions = {}): () => Promise<SingleServer> {
  let running: SingleServer | null = null;
  afterEach(async () => {
    await running?.stop();
    running = null;
  });
  return async () => {
    running = await startSingleServer(options);
    return running;
  };
}
