import { describe, expect, it } from 'vitest';
import { Cluster } from './cluster.js';
import { allFaultKinds, defaultFaultScheduleOptions, type FaultKind, FaultSchedule } from './faults.js';

function scheduled(seed: number, kinds: readonly FaultKind[]): { cluster: Cluster; schedule: FaultSchedule } {
  const cluster = Cluster.create({ seed, nodes: 5 });
  const schedule = new FaultSchedule({
    cluster,
    seed,
    schedule: defaultFaultScheduleOptions({ nodes: 5, kinds }),
  });
  return { cluster, schedule };
}

describe('FaultSchedule', () => {
  it('replays the same faults for the same seed, and different ones for another', () => {
    const run = (seed: number) => {
      const { cluster, schedule } = scheduled(seed, allFaultKinds);
      schedule.start();
      cluster.advance(6_000);
      return schedule.log().join('\n');
    };
    expect(run(31)).toBe(run(31));
    expect(run(31)).not.toBe(run(32));
  });

  it('injects every kind of fault it is given, and only those', () => {
    const { cluster, schedule } = scheduled(33, ['partition', 'torn']);
    schedule.start();
    cluster.advance(20_000);
    const log = schedule.log();
    expect(log.some((line) => / (split|isolate|cut|ring|bridge|partition) /.test(line))).toBe(true);
    expect(log.some((line) => /during its next write/.test(line))).toBe(true);
    expect(log.some((line) => / net /.test(line) || /crash n\d$/.test(line))).toBe(false);
  });

  it('keeps at most a minority down, apart from rare deliberate stalls', () => {
    const { cluster, schedule } = scheduled(34, ['crash']);
    schedule.start();
    let downMax = 0;
    let samplesPastMinority = 0;
    const samples = 400;
    for (let t = 0; t < samples; t++) {
      cluster.advance(50);
      let down = 0;
      for (let i = 0; i < 5; i++) if (!cluster.isAlive(i)) down++;
      downMax = Math.max(downMax, down);
      if (down > 2) samplesPastMinority++;
    }
    expect(downMax).toBeGreaterThan(0);
    expect(samplesPastMinority / samples).toBeLessThan(0.2);
  });

  it('heals everything when stopped, after which the cluster is live', () => {
    const { cluster, schedule } = scheduled(35, allFaultKinds);
    schedule.start();
    cluster.advance(5_000);
    schedule.stopAndHeal();
    for (let i = 0; i < 5; i++) expect(cluster.isAlive(i)).toBe(true);
    expect(cluster.network.describe()).toBe('11111/11111/11111/11111/11111');
    expect(cluster.network.conditions.dropRate).toBe(0);
    const faults = schedule.log().length;
    cluster.one({ op: 'put', key: 'after', value: 'heal' }, 5);
    cluster.advance(5_000);
    expect(schedule.log()).toHaveLength(faults);
    cluster.checkAll();
  });
});
