/**
 * Cluster benchmark: three servers on loopback, with the leader in this process and driven
 * through the host's propose path (no HTTP), the two followers as real `conclave agent`
 * processes. Every write is durable on a quorum (fdatasync on each server) before it counts.
 * Reports committed writes/s and latency percentiles at several numbers of proposals in
 * flight, for 1 group and for 8 groups.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Agent, resolveAgentConfig, startAgent } from '@conclave/server';
import { encodeCommand } from '@conclave/server/fsm';
import { pino } from 'pino';

export interface ClusterBenchResult {
  readonly bench: 'cluster';
  readonly groups: number;
  readonly inFlight: number;
  readonly valueBytes: number;
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  /** The leader's event-loop delay during the case; the heartbeat interval is one tick. */
  readonly loopLagP99Ms: number;
  readonly loopLagMaxMs: number;
  readonly heartbeatIntervalMs: number;
}

const cliPath = fileURLToPath(new URL('../../cli/dist/conclave.js', import.meta.url));
/** The leader's tick, which is also its heartbeat interval (one tick). */
const leaderTickMs = 20;
/** Ticks until every group must have moved its leader to this process. */
const leaderWaitTicksMax = 2000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitTicks(tickMs: number, done: () => boolean, ticksMax: number): Promise<void> {
  for (let i = 0; i < ticksMax; i++) {
    if (done()) return;
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
  throw new Error('the cluster did not reach the expected state in time');
}

interface BenchCluster {
  readonly leader: Agent;
  readonly children: ChildProcess[];
  readonly dirs: string[];
}

async function startCluster(groups: number): Promise<BenchCluster> {
  const ids = ['s1', 's2', 's3'];
  const raft = await Promise.all(ids.map(() => freePort()));
  const http = await Promise.all(ids.map(() => freePort()));
  const dirs = ids.map((id) => mkdtempSync(join(tmpdir(), `conclave-bench-${id}-`)));
  const joinOf = (i: number) =>
    ids.flatMap((id, j) => (j === i ? [] : [`${id}@127.0.0.1:${raft[j]}`])).join(',');
  const tickMs = leaderTickMs;
  const children = [1, 2].map((i) =>
    spawn(
      process.execPath,
      [
        cliPath,
        'agent',
        ...['--node-id', `${ids[i]}`, '--data-dir', `${dirs[i]}`, '--bind', `127.0.0.1:${raft[i]}`],
        ...['--http-addr', `127.0.0.1:${http[i]}`, '--bootstrap-expect', '3', '--join', joinOf(i)],
        ...['--groups', String(groups), '--tick-ms', String(tickMs), '--log-level', 'error'],
      ],
      { stdio: 'ignore' },
    ),
  );
  const config = resolveAgentConfig([
    {
      nodeId: 's1',
      dataDir: dirs[0],
      bind: `127.0.0.1:${raft[0]}`,
      httpAddr: `127.0.0.1:${http[0]}`,
      bootstrapExpect: 3,
      join: joinOf(0),
      groups,
      tickMs,
      logLevel: 'error',
    },
  ]);
  const peers = config.join.map((t) => ({ nodeId: t.nodeId ?? '', raft: t.raft }));
  const leader = await startAgent({
    config,
    peers,
    logger: pino({ level: 'error' }),
    balanceIntervalTicks: 0,
  });
  const leadsAll = () =>
    [...Array(groups).keys()].every((g) => leader.host.group(g).raw.status().role === 'leader');
  // Move every group's leadership here (the operator's transfer-leader endpoint on the
  // current leader), so proposals need no forwarding. Retried until it holds.
  const httpOf = new Map(ids.map((id, i) => [id, http[i]]));
  await waitTicks(
    tickMs,
    () => {
      for (let g = 0; g < groups; g++) {
        const { role, leaderId } = leader.host.group(g).raw.status();
        const port = leaderId === null ? undefined : httpOf.get(leaderId);
        if (role === 'leader' || port === undefined || leaderId === 's1') continue;
        fetch(`http://127.0.0.1:${port}/v1/operator/raft/transfer-leader?group=${g}&to=s1`, {
          method: 'POST',
        }).catch(() => undefined);
      }
      return leadsAll();
    },
    leaderWaitTicksMax,
  );
  return { leader, children, dirs };
}

async function stopCluster(cluster: BenchCluster): Promise<void> {
  await cluster.leader.stop({ transferLeadership: false });
  await Promise.all(
    cluster.children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) resolve();
          else {
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }
        }),
    ),
  );
  for (const dir of cluster.dirs) rmSync(dir, { recursive: true, force: true });
}

/** Keep `inFlight` proposals outstanding for `durationMs`; every key is distinct across groups. */
async function drive(options: {
  leader: Agent;
  groups: number;
  inFlight: number;
  valueBytes: number;
  durationMs: number;
}): Promise<{
  writes: number;
  elapsedMs: number;
  latenciesMs: number[];
  lagP99Ms: number;
  lagMaxMs: number;
}> {
  const { leader, groups, inFlight, valueBytes, durationMs } = options;
  const value = new Uint8Array(valueBytes).fill(120);
  const latenciesMs: number[] = [];
  let sequence = 0;
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const n = sequence++;
      const t0 = performance.now();
      await leader.host.propose({
        groupId: n % groups,
        data: encodeCommand({ type: 'kv', op: { verb: 'set', key: `k${n}`, value, flags: 0 } }),
      });
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, () => worker()));
  lag.disable();
  return {
    writes: latenciesMs.length,
    elapsedMs: performance.now() - started,
    latenciesMs,
    lagP99Ms: lag.percentile(99) / 1e6,
    lagMaxMs: lag.max / 1e6,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function runClusterBench(options: {
  groupCounts?: readonly number[];
  inFlights?: readonly number[];
  valueBytes?: number;
  durationMs?: number;
}): Promise<ClusterBenchResult[]> {
  const results: ClusterBenchResult[] = [];
  const valueBytes = options.valueBytes ?? 256;
  for (const groups of options.groupCounts ?? [1, 8]) {
    const cluster = await startCluster(groups);
    try {
      for (const inFlight of options.inFlights ?? [1, 16, 64, 256]) {
        // A short warm-up per case, so connections and the JIT are settled.
        await drive({ leader: cluster.leader, groups, inFlight, valueBytes, durationMs: 300 });
        const run = await drive({
          leader: cluster.leader,
          groups,
          inFlight,
          valueBytes,
          durationMs: options.durationMs ?? 3000,
        });
        const sorted = [...run.latenciesMs].sort((a, b) => a - b);
        results.push({
          bench: 'cluster',
          groups,
          inFlight,
          valueBytes,
          writes: run.writes,
          writesPerSecond: Math.round((run.writes / run.elapsedMs) * 1000),
          p50LatencyMs: Number(percentile(sorted, 50).toFixed(2)),
          p99LatencyMs: Number(percentile(sorted, 99).toFixed(2)),
          loopLagP99Ms: Number(run.lagP99Ms.toFixed(2)),
          loopLagMaxMs: Number(run.lagMaxMs.toFixed(2)),
          heartbeatIntervalMs: leaderTickMs,
        });
      }
    } finally {
      await stopCluster(cluster);
    }
  }
  return results;
}
