/**
 * The snapshot benchmark end to end at a small size: real agent processes and the real CLI
 * (the built dist), every phase reported, the restore verified, every process and temp dir
 * gone afterwards. Skipped without a build (`npm test` builds first).
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cliPath } from '@conclave/testkit';
import { describe, expect, it } from 'vitest';
import { runSnapshotBench } from './snapshot-bench.js';

interface Line {
  readonly phase?: string;
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

const benchDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('conclave-snapshot-bench-'));

describe('npm run bench -- snapshot', () => {
  it.skipIf(!existsSync(cliPath))(
    'loads, saves, restores into a fresh cluster and verifies, then stops everything',
    { timeout: 90_000 },
    async () => {
      const dirsBefore = new Set(benchDirs());
      const emitted: Line[] = [];
      const report = await runSnapshotBench({
        sizeMb: 4,
        valueKb: 16,
        groups: 4,
        sampleCount: 50,
        baselineMs: 300,
        settleQuietMs: 1000,
        emit: (line) => emitted.push(line as Line),
        log: () => undefined,
        conclaveCliPath: cliPath,
      });
      expect(emitted.map((l) => l.phase)).toEqual(['load', 'settle', 'save', 'restore', 'verify']);
      expect(report.load.keys).toBe(256);
      expect(report.verify).toMatchObject({
        ok: true,
        loadedKeys: 256,
        valuesSampled: 50,
        valuesDifferingCount: 0,
      });
      // Hex values gzip to about half: the archive is smaller than the data, but not tiny.
      expect(report.save.archiveMb).toBeGreaterThan(1);
      expect(report.save.archiveMb).toBeLessThan(4);
      expect(report.save.cliPeakRssMb).toBeGreaterThan(0);
      for (const server of Object.values(report.save.servers)) {
        expect(server.rssBeforeMb).toBeGreaterThan(0);
        expect(server.peakRssMb).toBeGreaterThan(0);
        expect(server.probeLatencyMs?.count).toBeGreaterThan(0);
      }
      expect(report.save.heartbeat.polls).toBeGreaterThan(0);
      expect(report.save.writeLoad.before.count).toBeGreaterThan(0);
      expect(report.save.writeLoad.during.errors).toBe(0);
      expect(benchDirs().filter((d) => !dirsBefore.has(d))).toEqual([]);
      for (const url of [...report.load.urls, ...report.restore.urls]) expect(await refused(url)).toBe(true);
    },
  );
});
