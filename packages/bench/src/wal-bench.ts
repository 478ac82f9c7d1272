/**
 * WAL group-commit benchmark: records/s and MB/s for small records at several batch sizes,
 * against the raw fdatasync rate of the same disk measured in the same run (append 256 B,
 * fdatasync, repeat). The ratio says how much group commit buys: with one fdatasync per
 * batch, records/s should approach (raw syncs/s) x (batch size) until bandwidth or CPU
 * takes over.
 *
 * Results are plain objects; `formatWalBenchLine` gives one JSON line per result.
 * Run directly: `node packages/server/dist/bench/wal-bench.js [dir] [durationMs]`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Entry } from '@conclave/raft';
import { type GroupWrite, NodeDisk, Wal } from '@conclave/storage';

export interface WalBenchOptions {
  /** A directory on the disk to measure; a temporary subdirectory is created and removed. */
  readonly dir?: string;
  readonly recordBytes?: number;
  readonly batchSizes?: readonly number[];
  /** How long each case runs. */
  readonly durationMs?: number;
  /** Records of a batch are spread over this many Raft groups, each also writing a hard state. */
  readonly groups?: number;
}

export interface RawSyncResult {
  readonly bench: 'wal';
  readonly case: 'rawFdatasync';
  readonly writeBytes: number;
  readonly syncs: number;
  readonly syncsPerSecond: number;
  readonly p50LatencyUs: number;
  readonly p99LatencyUs: number;
}

export interface GroupCommitResult {
  readonly bench: 'wal';
  readonly case: 'groupCommit';
  readonly recordBytes: number;
  readonly batchRecords: number;
  readonly groups: number;
  readonly batches: number;
  readonly records: number;
  readonly recordsPerSecond: number;
  /** Record payload (entry data) per second. */
  readonly payloadMBPerSecond: number;
  /** Bytes the WAL wrote (framing, headers, hard states included) per second. */
  readonly diskMBPerSecond: number;
  readonly batchesPerSecond: number;
  readonly p50BatchLatencyUs: number;
  readonly p99BatchLatencyUs: number;
  /** recordsPerSecond / raw syncsPerSecond: records made durable per raw fdatasync's time. */
  readonly recordsPerRawSync: number;
  /** batchesPerSecond / raw syncsPerSecond: how close each batch gets to one bare fdatasync. */
  readonly syncEfficiency: number;
}

export type WalBenchResult = RawSyncResult | GroupCommitResult;

export function formatWalBenchLine(result: WalBenchResult): string {
  return JSON.stringify(result);
}

const mb = 1024 * 1024;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function measureRawSync(options: { dir: string; writeBytes: number; durationMs: number }): RawSyncResult {
  const disk = new NodeDisk();
  const file = disk.open(path.join(options.dir, 'raw-sync'), { mode: 'createExclusive' });
  const data = new Uint8Array(options.writeBytes).fill(0x5a);
  const latencies: number[] = [];
  const start = performance.now();
  try {
    while (performance.now() - start < options.durationMs || latencies.length < 20) {
      const t = performance.now();
      file.append(data);
      file.datasync();
      latencies.push((performance.now() - t) * 1000);
    }
  } finally {
    file.close();
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    bench: 'wal',
    case: 'rawFdatasync',
    writeBytes: options.writeBytes,
    syncs: latencies.length,
    syncsPerSecond: round(latencies.length / seconds),
    p50LatencyUs: round(percentile(latencies, 0.5)),
    p99LatencyUs: round(percentile(latencies, 0.99)),
  };
}

function measureGroupCommit(options: {
  dir: string;
  recordBytes: number;
  batchRecords: number;
  groups: number;
  durationMs: number;
  rawSyncsPerSecond: number;
}): GroupCommitResult {
  const { recordBytes, batchRecords, durationMs } = options;
  const groups = Math.min(options.groups, batchRecords);
  const wal = Wal.open({ disk: new NodeDisk(), dir: options.dir });
  const data = new Uint8Array(recordBytes).fill(0xa5);
  const next = new Array<number>(groups).fill(1);
  const latencies: number[] = [];
  let records = 0;
  let bytesSinceCompaction = 0;
  let diskBytes = 0;
  const start = performance.now();
  try {
    while (performance.now() - start < durationMs || latencies.length < 20) {
      const perGroup: Entry[][] = Array.from({ length: groups }, () => []);
      for (let i = 0; i < batchRecords; i++) {
        const g = i % groups;
        const index = next[g] ?? 1;
        next[g] = index + 1;
        perGroup[g]?.push({ index, term: 1, type: 0, data });
      }
      const batch: GroupWrite[] = perGroup.map((entries, g) => ({
        groupId: g,
        entries,
        hardState: { term: 1, vote: 'n1', commit: Math.max(0, (next[g] ?? 1) - 2) },
        snapshot: null,
      }));
      const frameStart = wal.stats().tailSegmentBytes;
      const segmentBefore = wal.stats().lastSegmentSeq;
      const t = performance.now();
      wal.appendBatch(batch);
      latencies.push((performance.now() - t) * 1000);
      const after = wal.stats();
      diskBytes +=
        after.lastSegmentSeq === segmentBefore ? after.tailSegmentBytes - frameStart : after.tailSegmentBytes;
      records += batchRecords;
      bytesSinceCompaction += batchRecords * recordBytes;
      // Keep memory bounded (the WAL caches every retained entry) the way a server would: snapshot and compact.
      if (bytesSinceCompaction > 64 * mb) {
        for (let g = 0; g < groups; g++) {
          const log = wal.group(g);
          const index = log.lastIndex();
          wal.recordSnapshot({
            groupId: g,
            snapshot: {
              metadata: { index, term: 1, confState: { voters: ['n1'], learners: [] } },
              data: new Uint8Array(0),
            },
          });
        }
        bytesSinceCompaction = 0;
      }
    }
  } finally {
    wal.close();
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const recordsPerSecond = records / seconds;
  const batchesPerSecond = latencies.length / seconds;
  return {
    bench: 'wal',
    case: 'groupCommit',
    recordBytes,
    batchRecords,
    groups,
    batches: latencies.length,
    records,
    recordsPerSecond: round(recordsPerSecond),
    payloadMBPerSecond: round((recordsPerSecond * recordBytes) / mb, 2),
    diskMBPerSecond: round(diskBytes / seconds / mb, 2),
    batchesPerSecond: round(batchesPerSecond),
    p50BatchLatencyUs: round(percentile(latencies, 0.5)),
    p99BatchLatencyUs: round(percentile(latencies, 0.99)),
    recordsPerRawSync: round(recordsPerSecond / options.rawSyncsPerSecond, 2),
    syncEfficiency: round(batchesPerSecond / options.rawSyncsPerSecond, 3),
  };
}

/** Run the raw fdatasync baseline, then each batch size; results in that order. */
export function runWalBench(options: WalBenchOptions = {}): WalBenchResult[] {
  const recordBytes = options.recordBytes ?? 256;
  const durationMs = options.durationMs ?? 3000;
  const groups = options.groups ?? 16;
  const root = fs.mkdtempSync(path.join(options.dir ?? os.tmpdir(), 'conclave-wal-bench-'));
  try {
    const raw = measureRawSync({ dir: root, writeBytes: recordBytes, durationMs });
    const results: WalBenchResult[] = [raw];
    for (const batchRecords of options.batchSizes ?? [1, 16, 128, 1024]) {
      results.push(
        measureGroupCommit({
          dir: path.join(root, `wal-${batchRecords}`),
          recordBytes,
          batchRecords,
          groups,
          durationMs,
          rawSyncsPerSecond: raw.syncsPerSecond,
        }),
      );
    }
    return results;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const durationMs = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const results = runWalBench({
    ...(process.argv[2] === undefined ? {} : { dir: process.argv[2] }),
    ...(durationMs === undefined ? {} : { durationMs }),
  });
  for (const result of results) console.log(formatWalBenchLine(result));
}
