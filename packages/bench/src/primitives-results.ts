/**
 * The primitives benchmark's result lines: one per case and run, the median of each case
 * over the runs, the Conclave/etcd ratio where both ran it, the issue's goals, and the
 * side-by-side table. All are plain JSON-ready objects.
 */
import { median, ratio, round } from './bench-stats.js';

export type System = 'conclave' | 'etcd';

export const primitiveCases = [
  'counter-increment',
  'lock-cycle',
  'lock-handoff',
  'map-put',
  'map-get',
] as const;
export type PrimitiveCase = (typeof primitiveCases)[number];

/** What one case's ops, rate and latencies are, for the table's reader. */
export const caseLabels: Readonly<Record<PrimitiveCase, string>> = {
  'counter-increment': 'counter increment',
  'lock-cycle': 'lock acquire+release',
  'lock-handoff': 'lock hand-off',
  'map-put': 'map put',
  'map-get': 'map get',
};

/** What one run of one case measured. */
export interface CaseMeasurement {
  /** Completed operations (increments, cycles, hand-offs, puts, gets). */
  readonly ops: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly opsPerSecond: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  /** etcd's counter: transactions refused because another increment won (each retried). */
  readonly conflicts?: number;
  /** Lock hand-off: grants that went back to the contender that had just released. */
  readonly selfHandoffs?: number;
  /** Lock cases: grants seen while another contender still held the lock (must be 0). */
  readonly exclusionViolations?: number;
}

export interface PrimitiveRun extends CaseMeasurement {
  readonly bench: 'primitives';
  readonly stat: 'run';
  readonly system: System;
  readonly case: PrimitiveCase;
  /** Requests in flight; for the hand-off, the contending clients. */
  readonly inFlight: number;
  readonly run: number;
}

export interface PrimitiveMedian {
  readonly bench: 'primitives';
  readonly stat: 'median';
  readonly system: System;
  readonly case: PrimitiveCase;
  readonly inFlight: number;
  readonly runs: number;
  readonly medianOpsPerSecond: number;
  readonly medianP50LatencyMs: number;
  readonly medianP99LatencyMs: number;
  readonly minOpsPerSecond: number;
  readonly maxOpsPerSecond: number;
  /** Failed operations over all runs: a case with errors measured something else. */
  readonly errors: number;
  /** Summed over the runs, when the case counts them. */
  readonly conflicts?: number;
  readonly selfHandoffs?: number;
  readonly exclusionViolations?: number;
}

export interface PrimitiveRatio {
  readonly bench: 'primitives';
  readonly stat: 'ratio';
  readonly case: PrimitiveCase;
  readonly inFlight: number;
  /** Conclave / etcd: above 1 means Conclave does more per second. */
  readonly opsPerSecondRatio: number | null;
  /** Conclave / etcd: below 1 means Conclave is faster. */
  readonly p50LatencyRatio: number | null;
  readonly p99LatencyRatio: number | null;
}

export interface PrimitiveGoal {
  readonly bench: 'primitives';
  readonly stat: 'goal';
  readonly goal: 'counter-vs-etcd' | 'lock-handoff-p50';
  readonly description: string;
  /** The measured number the goal is judged on (a ratio, or ms); null when not measured. */
  readonly value: number | null;
  readonly target: number;
  /** null when the goal could not be judged (etcd skipped, the case not run). */
  readonly met: boolean | null;
}

/** The issue's goals: counter increments at least 2x etcd's txn increments at 64 in flight. */
export const counterGoalRatio = 2;
export const counterGoalInFlight = 64;
/** ... and a lock hand-off p50 under 3 ms. */
export const handoffGoalP50Ms = 3;

export function primitiveRun(options: {
  system: System;
  case: PrimitiveCase;
  inFlight: number;
  run: number;
  result: CaseMeasurement;
}): PrimitiveRun {
  const { result } = options;
  return {
    bench: 'primitives',
    stat: 'run',
    system: options.system,
    case: options.case,
    inFlight: options.inFlight,
    run: options.run,
    ops: result.ops,
    errors: result.errors,
    opsPerSecond: result.opsPerSecond,
    p50LatencyMs: result.p50LatencyMs,
    p99LatencyMs: result.p99LatencyMs,
    firstError: result.firstError,
    ...(result.conflicts === undefined ? {} : { conflicts: result.conflicts }),
    ...(result.selfHandoffs === undefined ? {} : { selfHandoffs: result.selfHandoffs }),
    ...(result.exclusionViolations === undefined ? {} : { exclusionViolations: result.exclusionViolations }),
  };
}

const cellKey = (c: { case: PrimitiveCase; inFlight: number }) => `${c.case} ${c.inFlight}`;

/** The sum of an optional count over runs; absent when no run counted it. */
function total(list: readonly PrimitiveRun[], pick: (r: PrimitiveRun) => number | undefined) {
  const counted = list.map(pick).filter((n): n is number => n !== undefined);
  return counted.length === 0 ? undefined : counted.reduce((a, b) => a + b, 0);
}

/** One median line per (system, case, inFlight), in the order the cells first ran. */
export function summarize(runs: readonly PrimitiveRun[]): PrimitiveMedian[] {
  const cells = new Map<string, PrimitiveRun[]>();
  for (const run of runs) {
    const key = `${run.system} ${cellKey(run)}`;
    const list = cells.get(key);
    if (list === undefined) cells.set(key, [run]);
    else list.push(run);
  }
  return [...cells.values()].flatMap((list) => {
    const first = list[0];
    if (first === undefined) return [];
    const rates = list.map((r) => r.opsPerSecond);
    const conflicts = total(list, (r) => r.conflicts);
    const selfHandoffs = total(list, (r) => r.selfHandoffs);
    const exclusionViolations = total(list, (r) => r.exclusionViolations);
    return [
      {
        bench: 'primitives',
        stat: 'median',
        system: first.system,
        case: first.case,
        inFlight: first.inFlight,
        runs: list.length,
        medianOpsPerSecond: Math.round(median(rates)),
        medianP50LatencyMs: round(median(list.map((r) => r.p50LatencyMs)), 3),
        medianP99LatencyMs: round(median(list.map((r) => r.p99LatencyMs)), 3),
        minOpsPerSecond: Math.min(...rates),
        maxOpsPerSecond: Math.max(...rates),
        errors: list.reduce((sum, r) => sum + r.errors, 0),
        ...(conflicts === undefined ? {} : { conflicts }),
        ...(selfHandoffs === undefined ? {} : { selfHandoffs }),
        ...(exclusionViolations === undefined ? {} : { exclusionViolations }),
      } satisfies PrimitiveMedian,
    ];
  });
}

/** Conclave/etcd for every (case, inFlight) both systems ran. */
export function ratios(medians: readonly PrimitiveMedian[]): PrimitiveRatio[] {
  const etcd = new Map(medians.filter((m) => m.system === 'etcd').map((m) => [cellKey(m), m]));
  return medians.flatMap((c) => {
    const e = c.system === 'conclave' ? etcd.get(cellKey(c)) : undefined;
    if (e === undefined) return [];
    return [
      {
        bench: 'primitives',
        stat: 'ratio',
        case: c.case,
        inFlight: c.inFlight,
        opsPerSecondRatio: ratio(c.medianOpsPerSecond, e.medianOpsPerSecond),
        p50LatencyRatio: ratio(c.medianP50LatencyMs, e.medianP50LatencyMs),
        p99LatencyRatio: ratio(c.medianP99LatencyMs, e.medianP99LatencyMs),
      } satisfies PrimitiveRatio,
    ];
  });
}

/** The issue's two goals, judged on the medians (null where a case was not measured). */
export function goals(
  medians: readonly PrimitiveMedian[],
  cellRatios: readonly PrimitiveRatio[],
): PrimitiveGoal[] {
  const counter = cellRatios.find(
    (r) => r.case === 'counter-increment' && r.inFlight === counterGoalInFlight,
  );
  const counterRatio = counter?.opsPerSecondRatio ?? null;
  const handoff = medians.find((m) => m.system === 'conclave' && m.case === 'lock-handoff');
  const handoffP50 = handoff === undefined || handoff.errors > 0 ? null : handoff.medianP50LatencyMs;
  return [
    {
      bench: 'primitives',
      stat: 'goal',
      goal: 'counter-vs-etcd',
      description: `counter increments/s at ${counterGoalInFlight} in flight >= ${counterGoalRatio}x etcd's txn increments`,
      value: counterRatio,
      target: counterGoalRatio,
      met: counterRatio === null ? null : counterRatio >= counterGoalRatio,
    },
    {
      bench: 'primitives',
      stat: 'goal',
      goal: 'lock-handoff-p50',
      description: `lock hand-off p50 < ${handoffGoalP50Ms} ms`,
      value: handoffP50,
      target: handoffGoalP50Ms,
      met: handoffP50 === null ? null : handoffP50 < handoffGoalP50Ms,
    },
  ];
}

/** The human-readable table for stderr: one row per (case, inFlight), the systems side by side. */
export function formatTable(
  medians: readonly PrimitiveMedian[],
  cellRatios: readonly PrimitiveRatio[],
  cellGoals: readonly PrimitiveGoal[],
): string {
  const rows: string[] = [];
  const header = `${'case'.padEnd(22)}${'n'.padStart(4)}  ${'conclave /s'.padStart(11)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  ${'etcd /s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  ${'ratio /s'.padStart(8)}`;
  rows.push(header, '-'.repeat(header.length));
  const seen = new Set<string>();
  for (const m of medians) {
    const key = cellKey(m);
    if (seen.has(key)) continue;
    seen.add(key);
    const c = medians.find((x) => x.system === 'conclave' && cellKey(x) === key);
    const e = medians.find((x) => x.system === 'etcd' && cellKey(x) === key);
    const r = cellRatios.find((x) => cellKey(x) === key);
    const side = (x: PrimitiveMedian | undefined, width: number) =>
      x === undefined
        ? `${'-'.padStart(width)} ${'-'.padStart(8)} ${'-'.padStart(8)}`
        : `${String(x.medianOpsPerSecond).padStart(width)} ${fmt(x.medianP50LatencyMs).padStart(8)} ${fmt(x.medianP99LatencyMs).padStart(8)}`;
    const notes = [c, e].flatMap((x) =>
      x !== undefined && (x.errors > 0 || (x.exclusionViolations ?? 0) > 0)
        ? [`${x.system}: ${x.errors} errors, ${x.exclusionViolations ?? 0} exclusion violations`]
        : [],
    );
    rows.push(
      `${caseLabels[m.case].padEnd(22)}${String(m.inFlight).padStart(4)}  ${side(c, 11)}  ${side(e, 9)}  ${(r?.opsPerSecondRatio === null || r === undefined ? '-' : `${r.opsPerSecondRatio}x`).padStart(8)}${notes.length > 0 ? `  (${notes.join('; ')})` : ''}`,
    );
  }
  rows.push('');
  for (const g of cellGoals) {
    const verdict = g.met === null ? 'not measured' : g.met ? 'met' : 'NOT met';
    const value =
      g.value === null ? '-' : g.goal === 'lock-handoff-p50' ? `${fmt(g.value)} ms` : `${g.value}x`;
    rows.push(`goal: ${g.description}: ${value} (${verdict})`);
  }
  return rows.join('\n');
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}
