/** The snapshot benchmark's summary for people, on stderr (the JSON lines carry the same data). */
import type { loadPhase, restorePhase, savePhase, verifyPhase } from './snapshot-bench-phases.js';

export interface SnapshotBenchLines {
  readonly load: Awaited<ReturnType<typeof loadPhase>>;
  readonly save: Awaited<ReturnType<typeof savePhase>>['line'];
  readonly restore: Awaited<ReturnType<typeof restorePhase>>['line'];
  readonly verify: Awaited<ReturnType<typeof verifyPhase>>;
}

const pad = (value: unknown, width: number) => String(value).padStart(width);

export function formatSnapshotTable(lines: SnapshotBenchLines): string {
  const { load, save, restore, verify } = lines;
  const rss = Object.entries(load.serverRssMb)
    .map(([id, mb]) => `${id} ${mb} MiB`)
    .join(', ');
  const changes = save.leadershipChanges;
  const writes = save.writeLoad;
  return [
    '',
    `snapshot: 3 servers on loopback, ${load.keys} keys of ${load.valueBytes} B (${load.dataMb} MiB), fsync on`,
    `load     ${load.dataMb} MiB in ${load.seconds} s = ${load.mbPerSecond} MiB/s (${load.inFlight} in flight); RSS after: ${rss}`,
    `save     ${save.wallSeconds} s by ${save.savedBy}, archive ${save.archiveMb} MiB, CLI peak RSS ${save.cliPeakRssMb} MiB`,
    `         server  RSS before  peak +MiB  probe p99/max ms  agent lag max ms before/after  max last contact ms (tick ${save.heartbeat.granularityMs})`,
    ...Object.entries(save.servers).map(
      ([id, s]) =>
        `         ${id.padEnd(6)}  ${pad(s.rssBeforeMb, 10)}  ${pad(s.peakDeltaMb, 9)}  ${pad(`${s.probeLatencyMs?.p99Ms}/${s.probeLatencyMs?.maxMs}`, 16)}  ${pad(`${s.agentLoopLagMaxMs.before}/${s.agentLoopLagMaxMs.after}`, 29)}  ${pad(s.maxLastContactMs ?? 'none seen', 19)}`,
    ),
    `         leadership changes during the save: ${changes.length === 0 ? 'none' : JSON.stringify(changes)}`,
    `         writes at ${writes.ratePerSecond}/s: p50/p99 ${writes.before.p50Ms}/${writes.before.p99Ms} ms before, ${writes.during.p50Ms}/${writes.during.p99Ms} ms during (errors ${writes.before.errors + writes.during.errors}, skipped ${writes.skipped})`,
    `restore  ${restore.wallSeconds} s by ${restore.restoredBy}, CLI peak RSS ${restore.cliPeakRssMb} MiB; server peak +MiB: ${Object.entries(
      restore.servers,
    )
      .map(([id, s]) => `${id} ${s.peakDeltaMb}`)
      .join(', ')}`,
    `verify   ${verify.ok ? 'ok' : 'FAILED'}: ${verify.loadedKeys}/${verify.expectedLoadedKeys} loaded keys, group counts ${verify.savedVsRestored.length + verify.savedVsListed.length === 0 ? 'match' : 'differ'}, ${verify.valuesSampled - verify.valuesDifferingCount}/${verify.valuesSampled} sampled values equal`,
  ].join('\n');
}
