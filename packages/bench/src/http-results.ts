/**
 * The HTTP benchmark's result lines: one per cell and run, the median of each cell over
 * the runs, and the Conclave/etcd ratio of each cell. All are plain JSON-ready objects.
 */
import { median, ratio, round } from './bench-stats.js';
import type { ClosedLoopResult } from './closed-loop.js';
import type { KvOp } from './kv-workload.js';

export type System = 'conclave' | 'etcd';

export interface CellRun {
  readonly bench: 'http';
  readonly stat: 'run';
  readonly system: System;
  readonly op: KvOp;
  readonly inFlight: number;
  readonly run: number;
  readonly ops: number;
  readonly errors: number;
  readonly opsPerSecond: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  readonly firstError: string | null;
}

export interface CellMedian {
  readonly bench: 'http';
  readonly stat: 'median';
  readonly system: System;
  readonly op: KvOp;
  readonly inFlight: number;
  readonly runs: number;
  readonly medianOpsPerSecond: number;
  readonly medianP50LatencyMs: number;
  readonly medianP99LatencyMs: number;
  readonly minOpsPerSecond: number;
  readonly maxOpsPerSecond: number;
  /** Failed requests over all runs: a cell with errors measured something else. */
  readonly errors: number;
}

export interface CellRatio {
  readonly bench: 'http';
  readonly stat: 'ratio';
  readonly op: KvOp;
  readonly inFlight: number;
  /** Conclave / etcd: above 1 means Conclave does more ops/s. */
  readonly opsPerSecondRatio: number | null;
  /** Conclave / etcd: below 1 means Conclave answers faster. */
  readonly p50LatencyRatio: number | null;
  readonly p99LatencyRatio: number | null;
}

export function cellRun(options: {
  system: System;
  op: KvOp;
  inFlight: number;
  run: number;
  result: ClosedLoopResult;
}): CellRun {
  const { result } = options;
  return {
    bench: 'http',
    stat: 'run',
    system: options.system,
    op: options.op,
    inFlight: options.inFlight,
    run: options.run,
    ops: result.ops,
    errors: result.errors,
    opsPerSecond: result.opsPerSecond,
    p50LatencyMs: result.p50LatencyMs,
    p99LatencyMs: result.p99LatencyMs,
    firstError: result.firstError,
  };
}

const cellKey = (c: { system: System; op: KvOp; inFlight: number }) => `${c.system} ${c.op} ${c.inFlight}`;

/** One median line per (system, op, inFlight), in the order the cells first ran. */
export function summarize(runs: readonly CellRun[]): CellMedian[] {
  const cells = new Map<string, CellRun[]>();
  for (const run of runs) {
    const key = cellKey(run);
    const list = cells.get(key);
    if (list === undefined) cells.set(key, [run]);
    else list.push(run);
  }
  return [...cells.values()].flatMap((list) => {
    const first = list[0];
    if (first === undefined) return [];
    const rates = list.map((r) => r.opsPerSecond);
    return [
      {
        bench: 'http',
        stat: 'median',
        system: first.system,
        op: first.op,
        inFlight: first.inFlight,
        runs: list.length,
        medianOpsPerSecond: Math.round(median(rates)),
        medianP50LatencyMs: round(median(list.map((r) => r.p50LatencyMs)), 3),
        medianP99LatencyMs: round(median(list.map((r) => r.p99LatencyMs)), 3),
        minOpsPerSecond: Math.min(...rates),
        maxOpsPerSecond: Math.max(...rates),
        errors: list.reduce((sum, r) => sum + r.errors, 0),
      } satisfies CellMedian,
    ];
  });
}

/** Conclave/etcd for every cell both systems ran. */
export function ratios(medians: readonly CellMedian[]): CellRatio[] {
  const etcd = new Map(medians.filter((m) => m.system === 'etcd').map((m) => [`${m.op} ${m.inFlight}`, m]));
  return medians.flatMap((c) => {
    const e = c.system === 'conclave' ? etcd.get(`${c.op} ${c.inFlight}`) : undefined;
    if (e === undefined) return [];
    return [
      {
        bench: 'http',
        stat: 'ratio',
        op: c.op,
        inFlight: c.inFlight,
        opsPerSecondRatio: ratio(c.medianOpsPerSecond, e.medianOpsPerSecond),
        p50LatencyRatio: ratio(c.medianP50LatencyMs, e.medianP50LatencyMs),
        p99LatencyRatio: ratio(c.medianP99LatencyMs, e.medianP99LatencyMs),
      } satisfies CellRatio,
    ];
  });
}

/** The human-readable table for stderr. */
export function formatTable(medians: readonly CellMedian[], cellRatios: readonly CellRatio[]): string {
  const ratioOf = new Map(cellRatios.map((r) => [`${r.op} ${r.inFlight}`, r]));
  const rows = medians.map((m) => {
    const r = m.system === 'conclave' ? ratioOf.get(`${m.op} ${m.inFlight}`) : undefined;
    const vs =
      r === undefined
        ? ''
        : `  vs etcd: ${fmtRatio(r.opsPerSecondRatio)}x ops/s, ${fmtRatio(r.p99LatencyRatio)}x p99`;
    const errors = m.errors > 0 ? `  ${m.errors} ERRORS` : '';
    return `${m.system.padEnd(8)} ${m.op.padEnd(14)} ${String(m.inFlight).padStart(4)} in flight ${String(m.medianOpsPerSecond).padStart(8)} ops/s  p50 ${fmtMs(m.medianP50LatencyMs)}  p99 ${fmtMs(m.medianP99LatencyMs)}${vs}${errors}`;
  });
  return rows.join('\n');
}

const fmtMs = (ms: number) => `${ms.toFixed(2).padStart(7)} ms`;
const fmtRatio = (r: number | null) => (r === null ? '-' : r.toFixed(2));
