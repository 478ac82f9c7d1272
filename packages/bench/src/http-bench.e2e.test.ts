/**
 * The HTTP benchmark end to end, briefly: real agent processes (the built dist), every op
 * measured, every process gone afterwards. With etcd on PATH, the etcd half too. Needs
 * `npm run build` (`npm test` builds first).
 */

import { assertBuilt, cliPath } from '@conclave/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from './etcd-install.js';
import { type HttpBenchOptions, runHttpBench } from './http-bench.js';
import { kvOps } from './kv-workload.js';

beforeAll(() => assertBuilt());

interface Line {
  readonly stat?: string;
  readonly system?: string;
  readonly urls?: readonly string[];
}

function options(vsEtcd: boolean, emitted: Line[]): HttpBenchOptions {
  return {
    runs: 1,
    timing: { warmupMs: 50, durationMs: 300, opsMax: 5000 },
    vsEtcd,
    emit: (line) => emitted.push(line as Line),
    log: () => undefined,
    inFlights: [1, 8],
    workload: { keyCount: 200, valueBytes: 256 },
    groups: 4,
    conclaveCliPath: cliPath,
  };
}

/** True once nothing listens at `url` any more. */
async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return false;
  } catch {
    return true;
  }
}

describe('npm run bench -- http', () => {
  it('measures every op at every concurrency without errors, then stops the cluster', {
    timeout: 90_000,
  }, async () => {
    const emitted: Line[] = [];
    const report = await runHttpBench(options(false, emitted));
    expect(report.medians.map((m) => `${m.op}@${m.inFlight}`)).toEqual(
      kvOps.flatMap((op) => [`${op}@1`, `${op}@8`]),
    );
    for (const cell of report.medians) {
      expect(cell.errors, `${cell.op} at ${cell.inFlight}`).toBe(0);
      expect(cell.medianOpsPerSecond).toBeGreaterThan(0);
      expect(cell.medianP99LatencyMs).toBeGreaterThanOrEqual(cell.medianP50LatencyMs);
    }
    expect(report.ratios).toEqual([]);
    const setup = emitted.find((l) => l.stat === 'setup' && l.system === 'conclave');
    expect(setup?.urls?.length).toBe(3);
    for (const url of setup?.urls ?? []) expect(await refused(url)).toBe(true);
  });

  it.skipIf(findExecutable('etcd', process.env.PATH) === null)(
    'with --vs-etcd, runs the same cells on etcd and compares them',
    { timeout: 120_000 },
    async () => {
      const emitted: Line[] = [];
      const report = await runHttpBench(options(true, emitted));
      const etcdCells = report.medians.filter((m) => m.system === 'etcd');
      expect(etcdCells.length).toBe(kvOps.length * 2);
      for (const cell of etcdCells) expect(cell.errors, `etcd ${cell.op} at ${cell.inFlight}`).toBe(0);
      expect(report.ratios.length).toBe(kvOps.length * 2);
      const setup = emitted.find((l) => l.stat === 'setup' && l.system === 'etcd');
      for (const url of setup?.urls ?? []) expect(await refused(`${url}/health`)).toBe(true);
    },
  );
});
