/**
 * The primitives benchmark end to end, briefly: real agent processes (the built dist),
 * every case measured without errors, every process gone afterwards. With etcd on PATH
 * (never installed by the test), the etcd half too. Needs `npm run build` (`npm test`
 * builds first).
 */

import { assertBuilt } from '@conclave/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from './etcd-install.js';
import { runPrimitivesBench } from './primitives-bench.js';

beforeAll(() => assertBuilt());

interface Line {
  readonly stat?: string;
  readonly system?: string;
  readonly urls?: readonly string[];
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

const withEtcd = findExecutable('etcd', process.env.PATH) !== null;

describe('npm run bench -- primitives', () => {
  it(`measures every case${withEtcd ? ' on Conclave and etcd' : ' (etcd is not on PATH: Conclave only)'} without errors, then stops the clusters`, {
    timeout: 120_000,
  }, async () => {
    const emitted: Line[] = [];
    const report = await runPrimitivesBench({
      runs: 1,
      warmupMs: 50,
      durationMs: 400,
      counterInFlights: [1, 8],
      mapInFlight: 8,
      contenders: 4,
      clients: 3,
      mapKeys: 50,
      vsEtcd: withEtcd,
      groups: 4,
      emit: (line) => emitted.push(line as Line),
      log: () => undefined,
    });
    const cells = (system: string) =>
      report.medians.filter((m) => m.system === system).map((m) => `${m.case}@${m.inFlight}`);
    expect(cells('conclave')).toEqual([
      'counter-increment@1',
      'counter-increment@8',
      'lock-cycle@1',
      'lock-handoff@4',
      'map-put@8',
      'map-get@8',
    ]);
    expect(cells('etcd')).toEqual(
      withEtcd ? ['counter-increment@1', 'counter-increment@8', 'lock-cycle@1', 'lock-handoff@4'] : [],
    );
    for (const cell of report.medians) {
      const what = `${cell.system} ${cell.case} at ${cell.inFlight}`;
      expect(cell.errors, what).toBe(0);
      expect(cell.exclusionViolations ?? 0, what).toBe(0);
      expect(cell.medianOpsPerSecond, what).toBeGreaterThan(0);
      expect(cell.medianP99LatencyMs, what).toBeGreaterThanOrEqual(cell.medianP50LatencyMs);
    }
    // A fair lock never hands itself back to the client that just released it.
    expect(
      report.medians.find((m) => m.system === 'conclave' && m.case === 'lock-handoff')?.selfHandoffs,
    ).toBe(0);
    expect(report.goals.map((g) => g.goal)).toEqual(['counter-vs-etcd', 'lock-handoff-p50']);
    expect(report.ratios.length).toBe(withEtcd ? 4 : 0);
    for (const line of emitted.filter((l) => l.stat === 'setup')) {
      for (const url of line.urls ?? []) {
        expect(await refused(line.system === 'etcd' ? `${url}/health` : url)).toBe(true);
      }
    }
  });
});
