import { describe, expect, it } from 'vitest';
import {
  type CaseMeasurement,
  formatTable,
  goals,
  type PrimitiveCase,
  primitiveRun,
  ratios,
  type System,
  summarize,
} from './primitives-results.js';

function measured(opsPerSecond: number, p50: number, extra: Partial<CaseMeasurement> = {}): CaseMeasurement {
  return {
    ops: opsPerSecond * 3,
    errors: 0,
    firstError: null,
    opsPerSecond,
    p50LatencyMs: p50,
    p99LatencyMs: p50 * 2,
    ...extra,
  };
}

const run = (system: System, kase: PrimitiveCase, inFlight: number, runNo: number, result: CaseMeasurement) =>
  primitiveRun({ system, case: kase, inFlight, run: runNo, result });

describe('primitives results', () => {
  const runs = [
    run('conclave', 'counter-increment', 64, 1, measured(900, 60)),
    run('conclave', 'counter-increment', 64, 2, measured(1000, 50)),
    run('conclave', 'counter-increment', 64, 3, measured(1100, 40)),
    run('etcd', 'counter-increment', 64, 1, measured(400, 150, { conflicts: 10 })),
    run('etcd', 'counter-increment', 64, 2, measured(500, 120, { conflicts: 20 })),
    run('etcd', 'counter-increment', 64, 3, measured(450, 130, { conflicts: 30 })),
    run('conclave', 'lock-handoff', 16, 1, measured(300, 2.5, { selfHandoffs: 0, exclusionViolations: 0 })),
    run('conclave', 'map-get', 64, 1, measured(5000, 10)),
  ];

  it('takes the median of each cell over its runs and sums its counts', () => {
    const medians = summarize(runs);
    const counter = medians.find((m) => m.system === 'conclave' && m.case === 'counter-increment');
    expect(counter).toMatchObject({
      runs: 3,
      medianOpsPerSecond: 1000,
      medianP50LatencyMs: 50,
      minOpsPerSecond: 900,
    });
    expect(counter?.conflicts).toBeUndefined();
    const etcd = medians.find((m) => m.system === 'etcd');
    expect(etcd).toMatchObject({ medianOpsPerSecond: 450, conflicts: 60 });
    expect(medians.find((m) => m.case === 'lock-handoff')?.exclusionViolations).toBe(0);
  });

  it('compares only the cells both systems ran, and judges the goals', () => {
    const medians = summarize(runs);
    const cellRatios = ratios(medians);
    expect(cellRatios).toEqual([
      {
        bench: 'primitives',
        stat: 'ratio',
        case: 'counter-increment',
        inFlight: 64,
        opsPerSecondRatio: 2.22,
        p50LatencyRatio: 0.38,
        p99LatencyRatio: 0.38,
      },
    ]);
    const [counter, handoff] = goals(medians, cellRatios);
    expect(counter).toMatchObject({ goal: 'counter-vs-etcd', value: 2.22, met: true });
    expect(handoff).toMatchObject({ goal: 'lock-handoff-p50', value: 2.5, met: true });
    const table = formatTable(medians, cellRatios, goals(medians, cellRatios));
    expect(table).toContain('counter increment');
    expect(table).toContain('2.22x');
    expect(table).toContain('lock hand-off p50 < 3 ms: 2.50 ms (met)');
  });

  it('leaves a goal unjudged when its cells were not measured', () => {
    const medians = summarize(runs.filter((r) => r.system === 'conclave' && r.case === 'map-get'));
    const judged = goals(medians, ratios(medians));
    expect(judged.map((g) => g.met)).toEqual([null, null]);
    expect(formatTable(medians, [], judged)).toContain('not measured');
  });

  it('does not pass the hand-off goal on a case with errors', () => {
    const medians = summarize([run('conclave', 'lock-handoff', 16, 1, measured(10, 1, { errors: 3 }))]);
    expect(goals(medians, [])[1]?.met).toBeNull();
  });
});
