/**
 * The snapshot benchmark's phases, each against a running cluster: load the data set,
 * save it with the real CLI under a light write load, restore it with the real CLI, and
 * verify what the restored cluster holds. Each returns the JSON line it reports.
 */
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { groupOfKey } from '@conclave/protocol';
import { round } from './bench-stats.js';
import type { Cleanup } from './cleanup.js';
import type { BenchClient } from './snapshot-bench-client.js';
import {
  benchKey,
  benchValue,
  type DataSet,
  dataBytes,
  type GroupKeys,
  groupCountMismatches,
  keyPrefix,
  leadershipChanges,
  megabytes,
  parseSelf,
  type SelfView,
  sampleIndexes,
} from './snapshot-bench-data.js';
import { readMemory, resetPeak, runMeasuredCli } from './snapshot-bench-proc.js';
import { HeartbeatPoller, LagProbe, WriteLoad } from './snapshot-bench-watch.js';

/** The cluster a phase runs against: its client, and its agents' pids in the client's order. */
export interface PhaseCluster {
  readonly client: BenchClient;
  readonly pids: readonly number[];
  readonly groups: number;
}

/** Writes the loader keeps in flight: enough to keep every group's leader batching. */
export const loadInFlight = 32;
/** Attempts per key: a leader moving meanwhile may refuse a write or two. */
const loadAttemptsMax = 5;
const loadRetryDelayMs = 100;
/** The light write load beside a save: enough samples for a p99, too few to be the bottleneck. */
export const writeRatePerSecond = 50;
/** A CLI save or restore of gigabytes on a slow disk takes minutes, not this. */
const cliTimeoutMs = 30 * 60_000;
/** Reads in flight while sampling values. */
const verifyInFlight = 16;
const valuesDifferingShown = 20;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function selfViews(client: BenchClient): Promise<SelfView[]> {
  return Promise.all(
    client.urls.map(async (_, server) => parseSelf(await client.json({ server, path: '/v1/agent/self' }))),
  );
}

/** Run `work(i)` for i in [0, count) with at most `inFlight` running at once. */
async function bounded(options: {
  count: number;
  inFlight: number;
  work: (i: number) => Promise<void>;
}): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < options.count) await options.work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(options.inFlight, options.count) }, worker));
}

/** Every key of the data set, each PUT straight to its group's leader (no forwarding hop). */
export async function loadPhase(options: {
  cluster: PhaseCluster;
  set: DataSet;
  log: (line: string) => void;
}) {
  const { cluster, set } = options;
  const { client } = cluster;
  const selves = await selfViews(client);
  const leaderServer = (selves[0]?.groups ?? []).map((g) => selves.findIndex((s) => s.nodeId === g.leaderId));
  const progressEvery = Math.max(1, Math.ceil(set.keyCount / 10));
  const started = performance.now();
  await bounded({
    count: set.keyCount,
    inFlight: loadInFlight,
    work: async (index) => {
      const key = benchKey(index);
      const leader = leaderServer[groupOfKey({ key, groupCount: cluster.groups })] ?? -1;
      const server = leader >= 0 ? leader : index % client.serverCount;
      await putWithRetries(client, { server, key, value: benchValue(set, index) });
      if ((index + 1) % progressEvery === 0) options.log(`bench: loaded ${index + 1}/${set.keyCount} keys`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    bench: 'snapshot',
    phase: 'load',
    keys: set.keyCount,
    valueBytes: set.valueBytes,
    dataMb: megabytes(dataBytes(set)),
    seconds: round(seconds, 2),
    mbPerSecond: round(megabytes(dataBytes(set)) / seconds, 1),
    inFlight: loadInFlight,
    urls: client.urls,
    serverRssMb: memoryBy(selves, cluster.pids, (pid) => megabytes(readMemory(pid).rssBytes)),
  };
}

/** A settle ends once no group on any server took a snapshot for this long (ms) ... */
export const settleQuietMsDefault = 10_000;
/** ... or after this long at most (ms). */
const settleMaxMs = 180_000;
const settlePollMs = 1_000;

/**
 * Waits for the load's aftermath: every group past its snapshot threshold encodes and
 * writes a snapshot of its state (128 MiB a group at 1 GiB), which costs memory, CPU and
 * disk for a while after the last write. The save is measured on a settled cluster, as
 * a user runs it, and the settle's own duration and memory are reported.
 */
export async function settlePhase(options: { cluster: PhaseCluster; quietMs: number }) {
  const { cluster, quietMs: settleQuietMs } = options;
  const { client } = cluster;
  const startedMs = performance.now();
  let last = '';
  let quietSinceMs = startedMs;
  while (performance.now() - quietSinceMs < settleQuietMs && performance.now() - startedMs < settleMaxMs) {
    await pause(settlePollMs);
    const snapshots = await Promise.all(
      client.urls.flatMap((_, server) =>
        Array.from({ length: cluster.groups }, async (_, groupId) => {
          const view = await client.json({ server, path: `/v1/operator/groups/${groupId}?stale` });
          return (view as { snapshotIndex?: unknown }).snapshotIndex;
        }),
      ),
    );
    const now = JSON.stringify(snapshots);
    if (now !== last) quietSinceMs = performance.now();
    last = now;
  }
  const selves = await selfViews(client);
  return {
    bench: 'snapshot',
    phase: 'settle',
    seconds: round((performance.now() - startedMs) / 1000, 1),
    settled: performance.now() - quietSinceMs >= settleQuietMs,
    serverRssMb: memoryBy(selves, cluster.pids, (pid) => megabytes(readMemory(pid).rssBytes)),
  };
}

async function putWithRetries(
  client: BenchClient,
  request: { server: number; key: string; value: Uint8Array },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.put(request);
    } catch (error) {
      if (attempt >= loadAttemptsMax) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`writing ${request.key} failed ${attempt} times: ${reason}`);
      }
      await pause(loadRetryDelayMs * attempt);
    }
  }
}

/** A value per server, keyed by node id (the selves are in the pids' order). */
function memoryBy<T>(
  selves: readonly SelfView[],
  pids: readonly number[],
  read: (pid: number, server: number) => T,
): Record<string, T> {
  return Object.fromEntries(pids.map((pid, i) => [selves[i]?.nodeId ?? `server${i}`, read(pid, i)]));
}

function hostPort(url: string): string {
  return new URL(url).host;
}

/**
 * `conclave snapshot save` against the first server, with the write load running from
 * `baselineMs` before it (the "before" latencies) to its end, and the lag probes, the
 * heartbeat poll and each server's peak memory covering exactly the CLI's run.
 */
export async function savePhase(options: {
  cluster: PhaseCluster;
  cliPath: string;
  archivePath: string;
  baselineMs: number;
  cleanup: Cleanup;
}) {
  const { cluster } = options;
  const { client, pids } = cluster;
  const writes = new WriteLoad(client, writeRatePerSecond);
  const lag = new LagProbe(client);
  const heartbeat = new HeartbeatPoller({ client, groups: cluster.groups });
  // Also on a failure: a write load left running would outlive the benchmark.
  const stopWatching = () => Promise.all([lag.stop(), heartbeat.stop(), writes.stop()]);
  let watched: Awaited<ReturnType<typeof measureSave>>;
  let stopped: Awaited<ReturnType<typeof stopWatching>>;
  try {
    writes.start('before');
    await pause(options.baselineMs);
    watched = await measureSave({ ...options, writes, lag, heartbeat });
  } finally {
    stopped = await stopWatching();
  }
  const { before, rssBefore, run } = watched;
  const [probes, contact, writeLatency] = stopped;
  const peaks = peaksSince(pids, rssBefore);
  const after = await selfViews(client);
  const saved = cliJson(run, 'snapshot save');
  return {
    line: {
      bench: 'snapshot',
      phase: 'save',
      wallSeconds: round(run.wallMs / 1000, 2),
      archiveMb: megabytes(statSync(options.archivePath).size),
      savedBy: before[0]?.nodeId ?? null,
      cliPeakRssMb: megabytes(run.peakRssBytes),
      servers: memoryBy(before, pids, (_, i) => ({
        ...memoryAround({ rssBefore, peaks, i }),
        probeLatencyMs: probes[i],
        agentLoopLagMaxMs: {
          before: round(before[i]?.eventLoopLagMaxMs ?? 0, 1),
          after: round(after[i]?.eventLoopLagMaxMs ?? 0, 1),
        },
        maxLastContactMs: contact.maxLastContactMs[before[i]?.nodeId ?? ''] ?? null,
      })),
      heartbeat: {
        pollIntervalMs: contact.pollIntervalMs,
        polls: contact.polls,
        meanPollIntervalMs: contact.meanPollIntervalMs,
        pollErrors: contact.pollErrors,
        granularityMs: heartbeatGranularityMs,
      },
      leadershipChanges: leadershipChanges({ before, after }),
      writeLoad: writeLatency,
    },
    groups: groupKeysOf(saved, 'snapshot save'),
  };
}

/** The save itself, with the probes covering exactly the CLI's run. */
async function measureSave(options: {
  cluster: PhaseCluster;
  cliPath: string;
  archivePath: string;
  cleanup: Cleanup;
  writes: WriteLoad;
  lag: LagProbe;
  heartbeat: HeartbeatPoller;
}) {
  const before = await selfViews(options.cluster.client);
  const { rssBefore, run } = await runSnapshotCli({
    ...options,
    command: 'save',
    onStart: () => {
      options.lag.start();
      options.heartbeat.start();
      options.writes.switchTo('during');
    },
  });
  return { before, rssBefore, run };
}

/**
 * `conclave snapshot <command> <archive> --json` against the first server, each server's
 * peak memory counted from just before it: reset first, then read, so the peak is never
 * below the RSS before even when a collection shrinks the process in between.
 */
async function runSnapshotCli(options: {
  cluster: PhaseCluster;
  cliPath: string;
  command: 'save' | 'restore';
  archivePath: string;
  cleanup: Cleanup;
  onStart?: () => void;
}) {
  const { client, pids } = options.cluster;
  for (const pid of pids) resetPeak(pid);
  const rssBefore = pids.map((pid) => readMemory(pid).rssBytes);
  options.onStart?.();
  const run = await runMeasuredCli({
    args: [options.cliPath, 'snapshot', options.command, options.archivePath, '--json'].concat([
      '--http-addr',
      hostPort(client.urls[0] ?? ''),
    ]),
    cleanup: options.cleanup,
    timeoutMs: cliTimeoutMs,
  });
  return { rssBefore, run };
}

/** lastContactMs counts whole ticks: the agents run with the default 50 ms tick. */
const heartbeatGranularityMs = 50;

/** `conclave snapshot restore` against the first server of a fresh cluster. */
export async function restorePhase(options: {
  cluster: PhaseCluster;
  cliPath: string;
  archivePath: string;
  cleanup: Cleanup;
}) {
  const { client, pids } = options.cluster;
  const selves = await selfViews(client);
  const { rssBefore, run } = await runSnapshotCli({ ...options, command: 'restore' });
  const peaks = peaksSince(pids, rssBefore);
  const answer = cliJson(run, 'snapshot restore');
  return {
    line: {
      bench: 'snapshot',
      phase: 'restore',
      wallSeconds: round(run.wallMs / 1000, 2),
      archiveMb: megabytes(statSync(options.archivePath).size),
      restoredBy: selves[0]?.nodeId ?? null,
      urls: client.urls,
      cliPeakRssMb: megabytes(run.peakRssBytes),
      servers: memoryBy(selves, pids, (_, i) => memoryAround({ rssBefore, peaks, i })),
    },
    groups: groupKeysOf(answer, 'snapshot restore'),
  };
}

function cliJson(run: { exitCode: number | null; stdout: string; stderr: string }, what: string): unknown {
  if (run.exitCode !== 0) {
    throw new Error(`conclave ${what} exited with ${run.exitCode}:\n${run.stderr}${run.stdout}`.trimEnd());
  }
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`conclave ${what} printed no JSON:\n${run.stdout.slice(0, 500)}`);
  }
}

/** The `groups` array ({groupId, keys, ...}) of a save or restore report. */
export function groupKeysOf(body: unknown, what: string): GroupKeys[] {
  const groups =
    typeof body === 'object' && body !== null ? (body as { groups?: unknown }).groups : undefined;
  if (!Array.isArray(groups)) throw new Error(`${what} reported no groups: ${JSON.stringify(body)}`);
  return groups.map((g: unknown) => {
    const { groupId, keys } = (typeof g === 'object' && g !== null ? g : {}) as Record<string, unknown>;
    if (typeof groupId !== 'number' || typeof keys !== 'number') {
      throw new Error(`${what} reported a group as ${JSON.stringify(g)}`);
    }
    return { groupId, keys };
  });
}

/**
 * What the restored cluster holds: per group, as many keys as the archive said it saved
 * and the restore said it wrote; every loaded key; and `sampleCount` values, byte for byte.
 */
export async function verifyPhase(options: {
  cluster: PhaseCluster;
  set: DataSet;
  saved: readonly GroupKeys[];
  restored: readonly GroupKeys[];
  sampleCount: number;
}) {
  const { cluster, set } = options;
  const { client } = cluster;
  const keys = await client.allKeys(0);
  const counts = new Map<number, number>();
  for (const key of keys) {
    const groupId = groupOfKey({ key, groupCount: cluster.groups });
    counts.set(groupId, (counts.get(groupId) ?? 0) + 1);
  }
  const listed = [...counts].map(([groupId, n]) => ({ groupId, keys: n }));
  const sample = sampleIndexes({ keyCount: set.keyCount, count: options.sampleCount, seed: set.seed });
  const differing: string[] = [];
  await bounded({
    count: sample.length,
    inFlight: verifyInFlight,
    work: async (i) => {
      const index = sample[i] ?? 0;
      const key = benchKey(index);
      const stored = await client.getRaw({ server: i % client.serverCount, key });
      if (stored === null || !stored.equals(benchValue(set, index))) differing.push(key);
    },
  });
  const loadedKeys = keys.filter((k) => k.startsWith(keyPrefix)).length;
  const savedVsRestored = groupCountMismatches({ expected: options.saved, actual: options.restored });
  const savedVsListed = groupCountMismatches({ expected: options.saved, actual: listed });
  return {
    bench: 'snapshot',
    phase: 'verify',
    ok:
      loadedKeys === set.keyCount &&
      savedVsRestored.length === 0 &&
      savedVsListed.length === 0 &&
      differing.length === 0,
    keysListed: keys.length,
    loadedKeys,
    expectedLoadedKeys: set.keyCount,
    savedVsRestored,
    savedVsListed,
    valuesSampled: sample.length,
    valuesDifferingCount: differing.length,
    /** The first few, by key: enough to start looking. */
    valuesDiffering: differing.sort().slice(0, valuesDifferingShown),
  };
}

/**
 * Each process's peak RSS since resetPeak, at least its RSS read just after the reset: the
 * kernel folds the current RSS into VmHWM lazily (at unmaps and exits), so a peak our own
 * read saw can be missing from VmHWM by the time the run ends (seen: 0.1 MiB below).
 */
function peaksSince(pids: readonly number[], rssBefore: readonly number[]): number[] {
  return pids.map((pid, i) => Math.max(readMemory(pid).peakRssBytes, rssBefore[i] ?? 0));
}

/** Server `i`'s RSS before a CLI run, its peak during it, and the difference (MiB). */
function memoryAround(options: { rssBefore: readonly number[]; peaks: readonly number[]; i: number }) {
  const before = options.rssBefore[options.i] ?? 0;
  const peak = options.peaks[options.i] ?? 0;
  return {
    rssBeforeMb: megabytes(before),
    peakRssMb: megabytes(peak),
    peakDeltaMb: megabytes(peak - before),
  };
}
