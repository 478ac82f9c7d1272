/**
 * `npm run bench -- snapshot [--size-mb 1024] [--value-kb 64]`: what a user snapshot of a
 * large state costs. Loads the state into a 3-server cluster of real agents over HTTP,
 * saves it with the real CLI under a light write load (wall time, memory of the CLI and of
 * each server, event-loop stalls, heartbeat lag, elections, write latency), then restores
 * it with the real CLI into a fresh cluster and verifies the contents. See docs/benchmarks.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup, type Resource } from './cleanup.js';
import { startConclaveCluster } from './conclave-cluster.js';
import { BenchClient } from './snapshot-bench-client.js';
import { dataSet } from './snapshot-bench-data.js';
import {
  loadPhase,
  type PhaseCluster,
  restorePhase,
  savePhase,
  settlePhase,
  settleQuietMsDefault,
  verifyPhase,
} from './snapshot-bench-phases.js';
import { formatSnapshotTable } from './snapshot-bench-table.js';

export interface SnapshotBenchOptions {
  readonly sizeMb: number;
  readonly valueKb: number;
  /** One result object per phase, for stdout as a JSON line. */
  readonly emit: (line: object) => void;
  /** Progress and the table, for stderr. */
  readonly log: (line: string) => void;
  /** Derives every value; the same seed loads the same bytes. */
  readonly seed?: string;
  readonly groups?: number;
  /** Values compared byte for byte after the restore. */
  readonly sampleCount?: number;
  /** How long the write load runs before the save, for its baseline latencies. */
  readonly baselineMs?: number;
  /** The save waits until no group took a snapshot for this long after the load (ms). */
  readonly settleQuietMs?: number;
  /** `conclave.js` for the agents and the CLI; packages/cli/dist's by default. */
  readonly conclaveCliPath?: string;
}

const builtCliPath = fileURLToPath(new URL('../../cli/dist/conclave.js', import.meta.url));
const defaults = { seed: 'conclave-snapshot-bench', groups: 8, sampleCount: 500, baselineMs: 3000 };

export async function runSnapshotBench(options: SnapshotBenchOptions) {
  const seed = options.seed ?? defaults.seed;
  // Checked before anything starts: a bad size fails in a millisecond, not after a cluster.
  const set = dataSet({ sizeMb: options.sizeMb, valueKb: options.valueKb, seed });
  const cliPath = options.conclaveCliPath ?? builtCliPath;
  const cleanup = new Cleanup();
  const removeHandlers = cleanup.installProcessHandlers({ log: options.log });
  try {
    const workDir = mkdtempSync(join(tmpdir(), 'conclave-snapshot-bench-'));
    cleanup.add(tempDir(workDir));
    const archivePath = join(workDir, 'state.snap');
    const first = await startCluster({ options, cleanup, cliPath });
    options.log(`bench: loading ${set.keyCount} keys of ${set.valueBytes} B`);
    const load = await loadPhase({ cluster: first.cluster, set, log: options.log });
    options.emit(load);
    options.log('bench: waiting for the snapshots the load set off to finish');
    options.emit(
      await settlePhase({ cluster: first.cluster, quietMs: options.settleQuietMs ?? settleQuietMsDefault }),
    );
    options.log(`bench: saving with the CLI under a light write load`);
    const save = await savePhase({
      cluster: first.cluster,
      cliPath,
      archivePath,
      baselineMs: options.baselineMs ?? defaults.baselineMs,
      cleanup,
    });
    options.emit(save.line);
    // Stopped before the second starts: two clusters holding the state at once would double the RAM.
    for (const resource of first.resources) await cleanup.release(resource);
    const second = await startCluster({ options, cleanup, cliPath });
    options.log('bench: restoring with the CLI into a fresh cluster');
    const restore = await restorePhase({ cluster: second.cluster, cliPath, archivePath, cleanup });
    options.emit(restore.line);
    const verify = await verifyPhase({
      cluster: second.cluster,
      set,
      saved: save.groups,
      restored: restore.groups,
      sampleCount: options.sampleCount ?? defaults.sampleCount,
    });
    options.emit(verify);
    options.log(formatSnapshotTable({ load, save: save.line, restore: restore.line, verify }));
    if (!verify.ok)
      throw new Error(`the restored cluster does not hold what was saved: ${JSON.stringify(verify)}`);
    return { load, save: save.line, restore: restore.line, verify };
  } finally {
    for (const failure of await cleanup.releaseAll()) options.log(`bench: cleanup failed: ${failure}`);
    removeHandlers();
  }
}

/** A cluster and its client, both registered with `cleanup`, client last (so released first). */
async function startCluster(context: {
  options: SnapshotBenchOptions;
  cleanup: Cleanup;
  cliPath: string;
}): Promise<{ cluster: PhaseCluster; resources: Resource[] }> {
  const { options, cleanup } = context;
  const groups = options.groups ?? defaults.groups;
  options.log(`bench: starting 3 Conclave servers (${groups} groups each)`);
  const started = await startConclaveCluster({ cleanup, groups, cliPath: context.cliPath });
  const pids = started.processes.map((p) => {
    if (p.pid === undefined) throw new Error(`${p.name} has no pid: ${p.describeExit()}`);
    return p.pid;
  });
  const client = new BenchClient(started.urls);
  const clientResource: Resource = {
    name: 'snapshot bench client',
    release: () => client.close(),
    // At exit the process is going away with its sockets: nothing to do synchronously.
    releaseNow: () => undefined,
  };
  cleanup.add(clientResource);
  return { cluster: { client, pids, groups }, resources: [clientResource, started.resource] };
}

function tempDir(root: string): Resource {
  return {
    name: `temp dir ${root}`,
    release: () => rm(root, { recursive: true, force: true }),
    releaseNow: () => rmSync(root, { recursive: true, force: true }),
  };
}
