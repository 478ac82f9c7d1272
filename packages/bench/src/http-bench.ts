/**
 * `npm run bench -- http [--vs-etcd]`: the client-facing benchmark. A 3-server Conclave
 * cluster of real agent processes on loopback, driven through Consul's KV endpoint by a
 * closed-loop client in this process; with `--vs-etcd`, the same workload against a
 * 3-member etcd cluster through the `etcd3` client, and the ratios. Each system runs alone,
 * one after the other, so they never share the CPU. See docs/benchmarks.md.
 */
import { Cleanup, type Resource } from './cleanup.js';
import { startConclaveCluster } from './conclave-cluster.js';
import { ConclaveTarget } from './conclave-target.js';
import { startEtcdCluster } from './etcd-cluster.js';
import { ensureEtcd, etcdVersion } from './etcd-install.js';
import { EtcdTarget } from './etcd-target.js';
import {
  type CellMedian,
  type CellRatio,
  type CellRun,
  cellRun,
  formatTable,
  ratios,
  type System,
  summarize,
} from './http-results.js';
import {
  defaultWorkload,
  type KvOp,
  type KvTarget,
  kvOps,
  preload,
  runCell,
  validateWorkload,
  type Workload,
} from './kv-workload.js';

export interface HttpBenchTiming {
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Bounds one cell's ops (and its latency buffer) whatever its duration. */
  readonly opsMax: number;
}

export const httpBenchTiming: Readonly<Record<'full' | 'quick', HttpBenchTiming>> = {
  full: { warmupMs: 500, durationMs: 3000, opsMax: 1_000_000 },
  quick: { warmupMs: 200, durationMs: 1000, opsMax: 1_000_000 },
};

export interface HttpBenchOptions {
  readonly runs: number;
  readonly timing: HttpBenchTiming;
  readonly vsEtcd: boolean;
  /** One result object, for stdout as a JSON line. */
  readonly emit: (line: object) => void;
  /** Progress and the table, for stderr. */
  readonly log: (line: string) => void;
  readonly ops?: readonly KvOp[];
  readonly inFlights?: readonly number[];
  readonly workload?: Workload;
  /** Raft groups per Conclave server. */
  readonly groups?: number;
  /** `conclave.js` to run the agents with; packages/cli/dist's by default. */
  readonly conclaveCliPath?: string;
}

export interface HttpBenchReport {
  readonly medians: readonly CellMedian[];
  readonly ratios: readonly CellRatio[];
}

const defaultInFlights = [1, 16, 64, 256];
const preloadInFlight = 64;
const requestTimeoutMs = 10_000;

export async function runHttpBench(options: HttpBenchOptions): Promise<HttpBenchReport> {
  const cleanup = new Cleanup();
  const removeHandlers = cleanup.installProcessHandlers({ log: options.log });
  try {
    const workload = options.workload ?? defaultWorkload;
    validateWorkload(workload);
    // Settled before anything starts, so a missing etcd is known before the long Conclave half.
    const etcd = options.vsEtcd ? ensureEtcd({ log: options.log }) : null;
    if (etcd !== null && !etcd.ok) {
      options.log(`bench: skipping etcd: ${etcd.reason}`);
      options.emit({ bench: 'http', stat: 'skipped', system: 'etcd', reason: etcd.reason });
    }
    const runs: CellRun[] = [];
    runs.push(...(await benchConclave(options, cleanup)));
    if (etcd?.ok) runs.push(...(await benchEtcd(options, { cleanup, etcdPath: etcd.path })));
    const medians = summarize(runs);
    const cellRatios = ratios(medians);
    for (const line of [...medians, ...cellRatios]) options.emit(line);
    options.log(
      [
        '',
        `http: 3 servers on loopback, ${workload.valueBytes} B values over ${workload.keyCount} keys, closed loop, requests round robin over the servers (median of ${options.runs} runs)`,
        formatTable(medians, cellRatios),
      ].join('\n'),
    );
    return { medians, ratios: cellRatios };
  } finally {
    for (const failure of await cleanup.releaseAll()) options.log(`bench: cleanup failed: ${failure}`);
    removeHandlers();
  }
}

async function benchConclave(options: HttpBenchOptions, cleanup: Cleanup): Promise<CellRun[]> {
  const groups = options.groups ?? 8;
  options.log(`bench: starting 3 Conclave servers (${groups} groups each)`);
  const cluster = await startConclaveCluster({
    cleanup,
    groups,
    ...(options.conclaveCliPath === undefined ? {} : { cliPath: options.conclaveCliPath }),
  });
  options.emit({
    bench: 'http',
    stat: 'setup',
    system: 'conclave',
    groups,
    leadersPerServer: cluster.leadersPerServer,
    urls: cluster.urls,
  });
  const target = new ConclaveTarget({
    urls: cluster.urls,
    connectionsPerServer: Math.max(preloadInFlight, ...(options.inFlights ?? defaultInFlights)),
    requestTimeoutMs,
  });
  const runs = await measureWith(options, { cleanup, system: 'conclave', target });
  await cleanup.release(cluster.resource);
  return runs;
}

async function benchEtcd(
  options: HttpBenchOptions,
  context: { cleanup: Cleanup; etcdPath: string },
): Promise<CellRun[]> {
  const { cleanup, etcdPath } = context;
  const version = etcdVersion(etcdPath);
  options.log(`bench: starting 3 etcd members (${etcdPath}, ${version})`);
  const cluster = await startEtcdCluster({ cleanup, etcdPath });
  options.emit({ bench: 'http', stat: 'setup', system: 'etcd', version, urls: cluster.clientUrls });
  const target = new EtcdTarget({ urls: cluster.clientUrls, requestTimeoutMs });
  const runs = await measureWith(options, { cleanup, system: 'etcd', target });
  await cleanup.release(cluster.resource);
  return runs;
}

/** Measure through `target`, which is closed afterwards (and on any failure, by the registry). */
async function measureWith(
  options: HttpBenchOptions,
  context: { cleanup: Cleanup; system: System; target: KvTarget },
): Promise<CellRun[]> {
  const { cleanup, system, target } = context;
  const client: Resource = {
    name: `${system} client`,
    release: () => target.close(),
    // At exit the process is going away with its sockets: nothing to do synchronously.
    releaseNow: () => undefined,
  };
  cleanup.add(client);
  const runs = await measure(options, { system, target });
  await cleanup.release(client);
  return runs;
}

/** Preload every key, then every cell once per run; runs interleave so drift hits all cells alike. */
async function measure(
  options: HttpBenchOptions,
  context: { system: System; target: KvTarget },
): Promise<CellRun[]> {
  const { system, target } = context;
  const workload = options.workload ?? defaultWorkload;
  options.log(`bench: ${system}: writing ${workload.keyCount} keys`);
  await preload({ target, workload, inFlight: preloadInFlight });
  const results: CellRun[] = [];
  for (let run = 1; run <= options.runs; run++) {
    for (const op of options.ops ?? kvOps) {
      for (const inFlight of options.inFlights ?? defaultInFlights) {
        const result = await runCell({ target, op, inFlight, workload, ...options.timing });
        const line = cellRun({ system, op, inFlight, run, result });
        options.emit(line);
        if (result.errors > 0) {
          options.log(
            `bench: ${system} ${op} at ${inFlight}: ${result.errors} errors, first: ${result.firstError}`,
          );
        }
        results.push(line);
      }
    }
  }
  return results;
}
