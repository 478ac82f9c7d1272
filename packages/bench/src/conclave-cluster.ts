/**
 * A 3-server Conclave cluster for the HTTP benchmark: real `conclave agent` processes on
 * loopback, with the production defaults (8 groups, 50 ms ticks, fsync on every write
 * batch) and their data dirs under one temp dir. Ready once every group has a leader all
 * servers agree on and the leaders are spread evenly, so no leadership moves mid-run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, pollUntil } from '@conclave/testkit';
import { assertAllRunning, BenchProcess, processesInTempDir } from './bench-process.js';
import type { Cleanup, Resource } from './cleanup.js';

/** The built CLI (packages/cli/dist), from this module's place in packages/bench/dist. */
const builtCliPath = fileURLToPath(new URL('../../cli/dist/conclave.js', import.meta.url));
const loopback = '127.0.0.1';
const startTimeoutMs = 30_000;
const leadersTimeoutMs = 60_000;
const pollIntervalMs = 200;
const selfTimeoutMs = 2000;

export interface ConclaveCluster {
  readonly urls: readonly string[];
  /** Groups each server leads, by node id, once the cluster was ready. */
  readonly leadersPerServer: Readonly<Record<string, number>>;
  /** The agents, in the order of `urls` (the snapshot bench reads their memory). */
  readonly processes: readonly BenchProcess[];
  /** Registered with the Cleanup passed in: release it there to stop the cluster. */
  readonly resource: Resource;
}

/** The part of `GET /v1/agent/self` the readiness check needs. */
export interface SelfView {
  readonly nodeId: string;
  readonly groups: readonly { readonly role: string; readonly leaderId: string | null }[];
}

/**
 * Groups led per server when every server names the same leader for every group, that
 * leader says it leads, and none leads more than its fair share (what the leader balancer
 * converges to); else undefined.
 */
export function settledLeadership(views: readonly SelfView[]): Record<string, number> | undefined {
  const first = views[0];
  if (first === undefined) return undefined;
  const counts: Record<string, number> = Object.fromEntries(views.map((v) => [v.nodeId, 0]));
  for (let g = 0; g < first.groups.length; g++) {
    const leaderId = first.groups[g]?.leaderId ?? null;
    if (leaderId === null || views.some((v) => v.groups[g]?.leaderId !== leaderId)) return undefined;
    const leader = views.find((v) => v.nodeId === leaderId);
    if (leader?.groups[g]?.role !== 'leader') return undefined;
    counts[leaderId] = (counts[leaderId] ?? 0) + 1;
  }
  const fairShare = Math.ceil(first.groups.length / views.length);
  return Object.values(counts).every((n) => n <= fairShare) ? counts : undefined;
}

export async function startConclaveCluster(options: {
  cleanup: Cleanup;
  groups: number;
  cliPath?: string;
}): Promise<ConclaveCluster> {
  const ids = ['s1', 's2', 's3'];
  const ports = await freePorts(ids.length * 2);
  const raftPort = (i: number) => ports[i] ?? 0;
  const httpPort = (i: number) => ports[ids.length + i] ?? 0;
  const root = mkdtempSync(join(tmpdir(), 'conclave-http-bench-'));
  const processes: BenchProcess[] = [];
  const resource: Resource = processesInTempDir({ name: 'conclave cluster', processes, root });
  options.cleanup.add(resource);
  for (const [i, nodeId] of ids.entries()) {
    const peers = ids.flatMap((id, j) => (j === i ? [] : [`${id}@${loopback}:${raftPort(j)}`]));
    const args = [
      ...agentNodeArgs(),
      options.cliPath ?? builtCliPath,
      'agent',
      ...['--node-id', nodeId, '--data-dir', join(root, nodeId)],
      ...['--bind', `${loopback}:${raftPort(i)}`, '--http-addr', `${loopback}:${httpPort(i)}`],
      ...['--bootstrap-expect', String(ids.length), '--join', peers.join(',')],
      ...['--groups', String(options.groups), '--log-level', 'error'],
    ];
    processes.push(new BenchProcess({ name: `conclave ${nodeId}`, command: process.execPath, args }));
  }
  await Promise.all(processes.map((p) => p.waitForOutput(/ is up: HTTP /, { timeoutMs: startTimeoutMs })));
  const urls = ids.map((_, i) => `http://${loopback}:${httpPort(i)}`);
  const leadersPerServer = await pollUntil(
    async () => {
      return settledLeadership(await Promise.all(urls.map(agentSelf)));
    },
    {
      timeoutMs: leadersTimeoutMs,
      intervalMs: pollIntervalMs,
      what: 'every group to have an agreed leader, spread evenly over the servers',
      giveUp: () => assertAllRunning(processes),
    },
  );
  return { urls, leadersPerServer, processes, resource };
}

/**
 * Extra Node flags for the agents, from CONCLAVE_BENCH_NODE_ARGS (space-separated), to
 * profile them under a benchmark's load: e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, which
 * NODE_OPTIONS does not accept. Each agent writes its profile when it stops.
 */
function agentNodeArgs(): string[] {
  const raw = process.env.CONCLAVE_BENCH_NODE_ARGS ?? '';
  return raw.split(' ').filter((arg) => arg.length > 0);
}

async function agentSelf(url: string): Promise<SelfView> {
  const response = await fetch(`${url}/v1/agent/self`, { signal: AbortSignal.timeout(selfTimeoutMs) });
  if (response.status !== 200) throw new Error(`${url}/v1/agent/self: HTTP ${response.status}`);
  const body: unknown = await response.json();
  return parseSelfView(body);
}

function parseSelfView(body: unknown): SelfView {
  const record = (value: unknown): Record<string, unknown> | null =>
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  const self = record(body);
  if (self === null || typeof self.nodeId !== 'string' || !Array.isArray(self.groups)) {
    throw new Error(`agent/self answered ${JSON.stringify(body).slice(0, 200)}`);
  }
  const groups = self.groups.map((value: unknown) => {
    const group = record(value);
    const leaderId = group?.leaderId;
    if (
      group === null ||
      typeof group.role !== 'string' ||
      !(typeof leaderId === 'string' || leaderId === null)
    ) {
      throw new Error(`agent/self group answered ${JSON.stringify(value).slice(0, 200)}`);
    }
    return { role: group.role, leaderId };
  });
  return { nodeId: self.nodeId, groups };
}
