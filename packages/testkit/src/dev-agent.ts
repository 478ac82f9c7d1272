import { rm } from 'node:fs/promises';
import { ConclaveClient } from '@conclave/client';
import { type Agent, resolveAgentConfig, startAgent } from '@conclave/server';
import { pino } from 'pino';

export interface DevAgent {
  readonly agent: Agent;
  /** `127.0.0.1:port` of its HTTP API. */
  readonly httpAddr: string;
  /** A client of it, closed by stop(). */
  readonly client: ConclaveClient;
  stop(): Promise<void>;
}

/**
 * A real single-server agent (`--dev`, a temporary data dir removed by stop()) on kernel-chosen loopback
 * ports, with a silent logger. Once it returns, every group has elected it: `--dev`
 * bootstraps each group with this server alone, and the first write waits for a leader.
 */
export async function startDevAgent(options: { groups?: number } = {}): Promise<DevAgent> {
  const config = resolveAgentConfig([
    { dev: true, groups: options.groups ?? 4, httpAddr: '127.0.0.1:0', bind: '127.0.0.1:0', tickMs: 10 },
  ]);
  const agent = await startAgent({ config, peers: [], logger: pino({ level: 'silent' }) });
  const httpAddr = `${agent.httpAddress.host}:${agent.httpAddress.port}`;
  const client = new ConclaveClient({ address: httpAddr });
  return {
    agent,
    httpAddr,
    client,
    async stop() {
      await client.close();
      await agent.stop({ transferLeadership: false });
      await rm(agent.dataDir, { recursive: true, force: true });
    },
  };
}
