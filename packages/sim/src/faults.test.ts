import { describe, expect, it } from 'vitest';
import { Cluster } from './cluster.js';
import {
  allFaultKinds,
  defaultFaultScheduleOptions,
  type FaultKind,
  FaultSchedule,
  parseFaultKinds,
} from './faults.js';
import { defaultMembershipChurnOptions } from './membership.js';

function scheduled(
  seed: number,
  kinds: readonly FaultKind[],
  options: { nodes?: number; snapshotThresholdEntries?: number } = {},
): { cluster: Cluster; schedule: FaultSchedule } {
  const nodes = options.nodes ?? 5;
  const cluster = Cluster.create({
    seed,
    nodes,
    ...(options.snapshotThresholdEntries === undefined
      ? {}
      : { snapshotThresholdEntries: options.snapshotThresholdEntries }),
  });
  const schedule = new FaultSchedule({
    cluster,
    seed,
    schedule: defaultFaultScheduleOptions({ nodes, kinds }),
  });
  return { cluster, schedule };
}

/** Keep clients writing through whichever node leads, so that logs grow and snapshots happen. */
function writeSteadily(cluster: Cluster, everyMs: number): void {
  let k = 0;
  const tick = (): void => {
    const leader = cluster.leaderOf();
    // A client id of its own: the KV drops a request older than its client's latest.
    const requestId = { clientId: 'writer', seq: ++k };
    if (leader !== null)
      cluster.propose(leader, { op: 'put', key: `k${k % 3}`, value: String(k), requestId });
    cluster.schedule({ afterMs: everyMs, label: 'writer', run: tick });
  };
  tick();
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
    // Every node runs again, except one wiped by the membership churn and not yet back.
    for (let i = 0; i < 5; i++) expect(cluster.isAlive(i)).toBe(!schedule.wiped.has(i));
    expect(cluster.network.describe()).toBe('11111/11111/11111/11111/11111');
    expect(cluster.network.conditions.dropRate).toBe(0);
    const faults = schedule.log().length;
    cluster.one({ op: 'put', key: 'after', value: 'heal' }, 'members');
    cluster.advance(5_000);
    expect(schedule.log()).toHaveLength(faults);
    cluster.checkAll();
  });

  it("includes 'transfer' and 'membership' in 'all'", () => {
    expect(parseFaultKinds('all')).toEqual(expect.arrayContaining(['transfer', 'membership']));
    expect(parseFaultKinds('membership,transfer')).toEqual(['membership', 'transfer']);
  });

  it('transfers leadership at random, and some transfers abort or are refused', () => {
    const { cluster, schedule } = scheduled(36, ['transfer']);
    schedule.start();
    cluster.advance(30_000);
    const transfers = schedule.log().filter((line) => / transfer n\d>n\d /.test(line));
    expect(transfers.length).toBeGreaterThan(20);
    expect(transfers.some((line) => /link cut/.test(line))).toBe(true);
    expect(transfers.some((line) => /most lagging/.test(line))).toBe(true);
    expect(transfers.some((line) => /not a voter.*refused/.test(line))).toBe(true);
    // Leadership moved many times, each time to a new term.
    expect(cluster.checkers.leadersByTerm.size).toBeGreaterThan(10);
    schedule.stopAndHeal();
    cluster.one({ op: 'put', key: 'after', value: 'transfers' }, 5);
    cluster.checkAll();
  });

  it.each([
    [3, 37],
    [5, 38],
  ])('churns membership within its rules (%i nodes, seed %i)', (nodes, seed) => {
    const { cluster, schedule } = scheduled(seed, ['membership', 'crash'], {
      nodes,
      snapshotThresholdEntries: 10,
    });
    const rules = defaultMembershipChurnOptions({ nodes });
    writeSteadily(cluster, 20);
    schedule.start();
    let votersMin = nodes;
    let wipedSeen = 0;
    for (let t = 0; t < 600; t++) {
      cluster.advance(50);
      const members = cluster.members();
      if (members !== null) votersMin = Math.min(votersMin, members.voters.length);
      for (const i of schedule.wiped) {
        wipedSeen++;
        // A wiped node stays down and out of the membership until it rejoins.
        expect(cluster.isAlive(i)).toBe(false);
        expect(cluster.node(i).disk.empty).toBe(true);
        expect(members?.voters.includes(i) ?? false).toBe(false);
        expect(members?.learners.includes(i) ?? false).toBe(false);
      }
    }
    expect(votersMin).toBeGreaterThanOrEqual(rules.votersMin);
    expect(votersMin).toBeLessThan(nodes);
    expect(wipedSeen).toBeGreaterThan(0);
    const log = schedule.log();
    expect(log.some((line) => /membership wipe n\d/.test(line))).toBe(true);
    expect(log.some((line) => /membership rejoin n\d empty/.test(line))).toBe(true);
    expect(log.some((line) => /demoted to learner/.test(line))).toBe(true);
    expect(log.some((line) => /voter again: done/.test(line))).toBe(true);

    schedule.stopAndHeal();
    for (let i = 0; i < nodes; i++) expect(cluster.isAlive(i)).toBe(!schedule.wiped.has(i));
    cluster.one({ op: 'put', key: 'after', value: 'churn' }, 'members');
    const members = cluster.members();
    for (const i of [...(members?.voters ?? []), ...(members?.learners ?? [])]) {
      expect(cluster.node(i).peek('after')).toBe('churn');
    }
    cluster.checkAll();
  });
});
