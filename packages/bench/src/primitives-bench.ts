/**
 * `npm run bench -- primitives`: the coordination primitives through the SDK, next to
 * etcd doing the same jobs through `etcd3`. Three `conclave agent` processes and three etcd
 * members on loopback, started by the bench with their defaults, both up for the whole run;
 * the two systems take turns (never measured at once), and runs alternate between them so
 * a neighbour's load drifting over time hits both alike. See docs/benchmarks.md.
 *
 * Cases (each one warm-up, then a measured closed loop of `durationMs`):
 * - counter-increment at each of `counterInFlights`: the SDK's `counter.increment()` on one
 *   counter; etcd: a get + compare-and-put on mod_revision, retried on conflict.
 * - lock-cycle, one client: `lock.acquire()` then `release()`, uncontended; etcd3's `lock()`.
 * - lock-handoff, `contenders` clients on one lock: hand-offs/s and the hand-off latency
 *   (defined in lock-handoff.ts).
 * - map-put and map-get at `mapInFlight` (Conclave only): the SDK's map over `mapKeys` keys.
 */

import { Cleanup, type Resource } from './cleanup.js';
import { runClosedLoop } from './closed-loop.js';
import { startConclaveCluster } from './conclave-cluster.js';
import { startEtcdCluster } from './etcd-cluster.js';
import { ensureEtcd, etcdVersion } from './etcd-install.js';
import { runHandoffs } from './lock-handoff.js';
import { ConclaveDriver, type PrimitivesDriver } from './primitives-conclave.js';
import { EtcdDriver } from './primitives-etcd.js';
import {
  type CaseMeasurement,
  formatTable,
  goals,
  type PrimitiveGoal,
  type PrimitiveMedian,
  type PrimitiveRatio,
  type PrimitiveRun,
  primitiveRun,
  ratios,
  type System,
  summarize,
} from './primitives-results.js';

export interface PrimitivesBenchOptions {
  readonly runs: number;
  /** Per case and run: a warm-up (not measured), then the measured duration, ms. */
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Counter increments in flight, one cell each (default 1 and 64). */
  readonly counterInFlights: readonly number[];
  /** Map puts/gets in flight (default 64). */
  readonly mapInFlight: number;
  /** Clients contending for the lock in the hand-off case (default 16). */
  readonly contenders: number;
  /** SDK connections (etcd clients) the counter and map load is spread over (default 3). */
  readonly clients: number;
  /** Keys the map cells cycle through (default 1,000). */
  readonly mapKeys: number;
  /** Run etcd too (installing it if missing and allowed); false: Conclave only. */
  readonly vsEtcd: boolean;
  /** One result object, for stdout as a JSON line. */
  readonly emit: (line: object) => void;
  /** Progress and the table, for stderr. */
  readonly log: (line: string) => void;
  /** Raft groups per Conclave server (the agent's default, 8, unless given). */
  readonly groups?: number;
  /** `conclave.js` to run the agents with; packages/cli/dist's by default. */
  readonly conclaveCliPath?: string;
}

export const primitivesDefaults = {
  runs: 3,
  warmupMs: 500,
  durationMs: 3000,
  counterInFlights: [1, 64],
  mapInFlight: 64,
  contenders: 16,
  clients: 3,
  mapKeys: 1000,
} as const;

export interface PrimitivesBenchReport {
  readonly runs: readonly PrimitiveRun[];
  readonly medians: readonly PrimitiveMedian[];
  readonly ratios: readonly PrimitiveRatio[];
  readonly goals: readonly PrimitiveGoal[];
}

const opsMax = 1_000_000;
/** The hand-off run fails if its contenders have not all stopped this long after its end. */
const handoffDrainTimeoutMs = 30_000;
const agentGroupsDefault = 8;

interface SystemUnderTest {
  readonly system: System;
  readonly driver: PrimitivesDriver;
  readonly conclave?: ConclaveDriver;
  readonly etcd?: EtcdDriver;
}

export async function runPrimitivesBench(options: PrimitivesBenchOptions): Promise<PrimitivesBenchReport> {
  validate(options);
  const cleanup = new Cleanup();
  const removeHandlers = cleanup.installProcessHandlers({ log: options.log });
  try {
    // Settled before anything starts, so a missing etcd is known up front.
    const etcd = options.vsEtcd ? ensureEtcd({ log: options.log }) : null;
    if (etcd !== null && !etcd.ok) {
      options.log(`bench: skipping etcd: ${etcd.reason}`);
      options.emit({ bench: 'primitives', stat: 'skipped', system: 'etcd', reason: etcd.reason });
    }
    const systems: SystemUnderTest[] = [await startConclave(options, cleanup)];
    if (etcd?.ok) systems.push(await startEtcd(options, cleanup, etcd.path));

    const runs: PrimitiveRun[] = [];
    for (let run = 1; run <= options.runs; run++) {
      for (const sut of systems) {
        for (const line of await measureSystem(options, sut, run)) {
          options.emit(line);
          if (line.errors > 0) {
            options.log(
              `bench: ${line.system} ${line.case} at ${line.inFlight}: ${line.errors} errors, first: ${line.firstError}`,
            );
          }
          runs.push(line);
        }
      }
    }
    const medians = summarize(runs);
    const cellRatios = ratios(medians);
    const cellGoals = goals(medians, cellRatios);
    for (const line of [...medians, ...cellRatios, ...cellGoals]) options.emit(line);
    options.log(
      [
        '',
        `primitives: 3 Conclave servers${systems.length > 1 ? ' and 3 etcd members' : ''} on loopback, closed loop, ${options.durationMs} ms per case (median of ${options.runs} run${options.runs === 1 ? '' : 's'}); n = in flight, or contenders for the hand-off`,
        formatTable(medians, cellRatios, cellGoals),
      ].join('\n'),
    );
    return { runs, medians, ratios: cellRatios, goals: cellGoals };
  } finally {
    for (const failure of await cleanup.releaseAll()) options.log(`bench: cleanup failed: ${failure}`);
    removeHandlers();
  }
}

function validate(options: PrimitivesBenchOptions): void {
  const positive = (name: string, value: number, max: number) => {
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new Error(`${name} must be an integer in [1, ${max}], got ${value}`);
    }
  };
  positive('runs', options.runs, 100);
  positive('durationMs', options.durationMs, 600_000);
  if (!Number.isInteger(options.warmupMs) || options.warmupMs < 0 || options.warmupMs > 60_000) {
    throw new Error(`warmupMs must be an integer in [0, 60000], got ${options.warmupMs}`);
  }
  if (options.counterInFlights.length === 0) throw new Error('name at least one counter in-flight count');
  for (const n of options.counterInFlights) positive('counter in flight', n, 1024);
  positive('mapInFlight', options.mapInFlight, 1024);
  positive('clients', options.clients, 64);
  positive('mapKeys', options.mapKeys, 100_000);
  // The SDK's lock queue holds 1,024 sessions; a hand-off needs a second contender.
  if (!Number.isInteger(options.contenders) || options.contenders < 2 || options.contenders > 256) {
    throw new Error(`contenders must be an integer in [2, 256], got ${options.contenders}`);
  }
}

async function startConclave(options: PrimitivesBenchOptions, cleanup: Cleanup): Promise<SystemUnderTest> {
  const groups = options.groups ?? agentGroupsDefault;
  options.log(`bench: starting 3 Conclave servers (${groups} groups each)`);
  const cluster = await startConclaveCluster({
    cleanup,
    groups,
    ...(options.conclaveCliPath === undefined ? {} : { cliPath: options.conclaveCliPath }),
  });
  options.emit({
    bench: 'primitives',
    stat: 'setup',
    system: 'conclave',
    groups,
    leadersPerServer: cluster.leadersPerServer,
    urls: cluster.urls,
  });
  const driver = new ConclaveDriver(cluster.urls, options.clients);
  cleanup.add(clientResource('conclave SDK connections', () => driver.close()));
  options.log(`bench: conclave: writing ${options.mapKeys} map keys`);
  await driver.preloadMap(options.mapKeys, options.mapInFlight);
  return { system: 'conclave', driver, conclave: driver };
}

async function startEtcd(options: PrimitivesBenchOptions, cleanup: Cleanup, etcdPath: string) {
  const version = etcdVersion(etcdPath);
  options.log(`bench: starting 3 etcd members (${etcdPath}, ${version})`);
  const cluster = await startEtcdCluster({ cleanup, etcdPath });
  options.emit({ bench: 'primitives', stat: 'setup', system: 'etcd', version, urls: cluster.clientUrls });
  const driver = new EtcdDriver(cluster.clientUrls);
  cleanup.add(clientResource('etcd clients', () => driver.close()));
  await driver.resetCounter();
  return { system: 'etcd', driver, etcd: driver } satisfies SystemUnderTest;
}

function clientResource(name: string, close: () => Promise<void>): Resource {
  // At exit the process is going away with its sockets: nothing to do synchronously.
  return { name, release: close, releaseNow: () => undefined };
}

/** Every case of one system, once: the lines of run `run`. */
async function measureSystem(
  options: PrimitivesBenchOptions,
  sut: SystemUnderTest,
  run: number,
): Promise<PrimitiveRun[]> {
  const { system, driver } = sut;
  const lines: PrimitiveRun[] = [];
  const record = (kase: PrimitiveRun['case'], inFlight: number, result: CaseMeasurement) =>
    lines.push(primitiveRun({ system, case: kase, inFlight, run, result }));

  for (const inFlight of options.counterInFlights) {
    const result = await closedLoop(
      options,
      inFlight,
      (seq) => driver.increment(seq),
      () => sut.etcd?.takeConflicts(),
    );
    record('counter-increment', inFlight, result);
  }

  const cycleLock = `bench-lock-cycle-${run}`;
  record('lock-cycle', 1, await closedLoop(options, 1, () => driver.lockCycle(cycleLock)));

  const set = await driver.contenders(`bench-handoff-${run}`, options.contenders);
  try {
    const handoff = (durationMs: number) =>
      runHandoffs({
        contenders: set.contenders,
        durationMs,
        handoffsMax: opsMax,
        drainTimeoutMs: handoffDrainTimeoutMs,
      });
    if (options.warmupMs > 0) await handoff(options.warmupMs);
    record('lock-handoff', options.contenders, await handoff(options.durationMs));
  } finally {
    await set.close();
  }

  const conclave = sut.conclave;
  if (conclave !== undefined) {
    const keys = options.mapKeys;
    const inFlight = options.mapInFlight;
    record('map-put', inFlight, await closedLoop(options, inFlight, (seq) => conclave.mapPut(seq, keys)));
    record('map-get', inFlight, await closedLoop(options, inFlight, (seq) => conclave.mapGet(seq, keys)));
  }
  return lines;
}

/**
 * A warm-up, then the measured closed loop. `conflicts`, when given, is read (and reset)
 * after each: what it returns after the measured loop is reported.
 */
async function closedLoop(
  options: PrimitivesBenchOptions,
  inFlight: number,
  operation: (sequence: number) => Promise<void>,
  conflicts?: () => number | undefined,
): Promise<CaseMeasurement> {
  if (options.warmupMs > 0)
    await runClosedLoop({ inFlight, opsMax, durationMs: options.warmupMs, operation });
  conflicts?.();
  const result = await runClosedLoop({ inFlight, opsMax, durationMs: options.durationMs, operation });
  const counted = conflicts?.();
  return counted === undefined ? result : { ...result, conflicts: counted };
}
