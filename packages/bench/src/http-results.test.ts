import { describe, expect, it } from 'vitest';
import { median, ratio } from './bench-stats.js';
import { type CellRun, formatTable, ratios, summarize } from './http-results.js';
import type { KvOp } from './kv-workload.js';

function run(options: {
  system: 'conclave' | 'etcd';
  op: KvOp;
  inFlight: number;
  run: number;
  opsPerSecond: number;
  p99LatencyMs?: number;
  errors?: number;
}): CellRun {
  return {
    bench: 'http',
    stat: 'run',
    system: options.system,
    op: options.op,
    inFlight: options.inFlight,
    run: options.run,
    ops: options.opsPerSecond,
    errors: options.errors ?? 0,
    opsPerSecond: options.opsPerSecond,
    p50LatencyMs: 1,
    p99LatencyMs: options.p99LatencyMs ?? 2,
    firstError: null,
  };
}

describe('median and ratio', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
  });

  it('has no ratio against a zero', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 3)).toBe(0.33);
    expect(ratio(1, 0)).toBeNull();
  });
});

describe('summarize', () => {
  it('gives one median line per system, op and concurrency over its runs', () => {
    const runs = [1, 2, 3].flatMap((r) => [
      run({ system: 'conclave', op: 'put', inFlight: 1, run: r, opsPerSecond: [100, 300, 200][r - 1] ?? 0 }),
      run({
        system: 'conclave',
        op: 'put',
        inFlight: 16,
        run: r,
        opsPerSecond: 1000,
        errors: r === 2 ? 4 : 0,
      }),
    ]);
    const medians = summarize(runs);
    expect(medians.map((m) => [m.op, m.inFlight, m.runs])).toEqual([
      ['put', 1, 3],
      ['put', 16, 3],
    ]);
    expect(medians[0]).toMatchObject({ medianOpsPerSecond: 200, minOpsPerSecond: 100, maxOpsPerSecond: 300 });
    // Errors of any run show in the summary: a cell with errors must not look clean.
    expect(medians[1]?.errors).toBe(4);
  });
});

describe('ratios', () => {
  it('compares each Conclave cell with the same etcd cell, Conclave over etcd', () => {
    const medians = summarize([
      run({ system: 'conclave', op: 'put', inFlight: 16, run: 1, opsPerSecond: 3000, p99LatencyMs: 10 }),
      run({ system: 'conclave', op: 'get-stale', inFlight: 16, run: 1, opsPerSecond: 9000 }),
      run({ system: 'etcd', op: 'put', inFlight: 16, run: 1, opsPerSecond: 2000, p99LatencyMs: 20 }),
      run({ system: 'etcd', op: 'put', inFlight: 64, run: 1, opsPerSecond: 5000 }),
    ]);
    const cells = ratios(medians);
    // Only cells both systems ran: get-stale has no etcd run, put at 64 no Conclave run.
    expect(cells).toEqual([
      {
        bench: 'http',
        stat: 'ratio',
        op: 'put',
        inFlight: 16,
        opsPerSecondRatio: 1.5,
        p50LatencyRatio: 1,
        p99LatencyRatio: 0.5,
      },
    ]);
    const table = formatTable(medians, cells);
    expect(table).toContain('vs etcd: 1.50x ops/s, 0.50x p99');
  });
});
