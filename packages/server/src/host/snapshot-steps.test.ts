import type { Entry } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import type { GroupLimits } from './group.js';
import { MultiRaftHost } from './host.js';
import type { StateMachine } from './ports.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';

/**
 * Counts applied entries; its snapshot is the count when the snapshot began, encoded in
 * `stepsNeeded` steps, and it records how many applies happened while one was in progress.
 */
class SteppingMachine implements StateMachine<number> {
  applied = 0;
  appliedDuringSnapshot = 0;
  private encoding = false;

  constructor(private readonly stepsNeeded: number) {}

  apply(_entry: Entry): number {
    this.applied++;
    if (this.encoding) this.appliedDuringSnapshot++;
    return this.applied;
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.applied));
  }

  *snapshotSteps(): Generator<void, Uint8Array, void> {
    const captured = this.snapshot();
    this.encoding = true;
    for (let i = 0; i < this.stepsNeeded; i++) yield;
    this.encoding = false;
    return captured;
  }

  restore(data: Uint8Array): void {
    this.applied = Number(new TextDecoder().decode(data));
  }
}

/** One server, one group, over `machine`, with snapshots after 10 entries; led once it runs a turn. */
function steppingHost(machine: SteppingMachine, limits: Partial<GroupLimits>) {
  const log = new MemoryDurableLog({ groupCount: 1, voters: ['s1'] });
  const host = new MultiRaftHost<number>({
    nodeId: 's1',
    groupCount: 1,
    log,
    transport: new LoopbackNetwork().transportFor('s1'),
    stateMachine: () => machine,
    seed: 1,
    limits: { snapshotThresholdEntries: 10, ...limits },
  });
  host.group(0).raw.campaign();
  host.runTurns();
  return { host, log };
}

const proposeN = (host: MultiRaftHost<number>, count: number) =>
  Promise.all(
    Array.from({ length: count }, (_, i) => host.propose({ groupId: 0, data: new Uint8Array([i + 1]) })),
  );

async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('snapshots encoded in steps', () => {
  it('spread over turns while applies go on, and are saved at the index where they began', async () => {
    const machine = new SteppingMachine(40);
    // Two steps a turn at most, whatever the time budget, so the 40 steps span many turns.
    const { host, log } = steppingHost(machine, { snapshotTrailingEntries: 2, snapshotStepsPerTurnMax: 2 });
    const storage = log.storages.get(0);
    if (storage === undefined) throw new Error('no storage');
    const first = await proposeN(host, 12);
    const startedAt = host.group(0).applied;
    expect(host.group(0).snapshotting).toBe(true);
    expect(storage.snapshot().metadata.index).toBe(0);
    // Applies continue while the snapshot is encoded.
    await proposeN(host, 5);
    expect(machine.appliedDuringSnapshot).toBe(5);
    await settle();
    expect(host.group(0).snapshotting).toBe(false);
    const saved = storage.snapshot();
    expect(saved.metadata.index).toBe(startedAt);
    expect(new TextDecoder().decode(saved.data)).toBe(String(first.length));
    host.stop();
  });
});

describe('the per-turn snapshot budget', () => {
  it('encodes cheap steps many to a turn, up to snapshotStepsPerTurnMax', async () => {
    // A generous budget: 40 instant steps fit in one turn, where 2 a turn needed 20.
    const { host } = steppingHost(new SteppingMachine(40), {
      snapshotStepBudgetMs: 1000,
      snapshotStepsPerTurnMax: 64,
    });
    await proposeN(host, 12);
    expect(host.group(0).snapshotting).toBe(true);
    host.runTurns();
    expect(host.group(0).snapshotting).toBe(false);
    host.stop();
  });
});
