import type { Entry } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { MultiRaftHost } from './host.js';
import type { StateMachine } from './ports.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';

/** Counts applied entries; its snapshot is that count, taken at once. */
class CountingMachine implements StateMachine<number> {
  applied = 0;

  apply(_entry: Entry): number {
    return ++this.applied;
  }

  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.applied));
  }

  restore(data: Uint8Array): void {
    this.applied = Number(new TextDecoder().decode(data));
  }
}

function singleServer(limits: {
  snapshotThresholdEntries: number;
  snapshotTrailingEntries: number;
  snapshotIntervalTicks: number;
}) {
  const log = new MemoryDurableLog({ groupCount: 1, voters: ['s1'] });
  const host = new MultiRaftHost<number>({
    nodeId: 's1',
    groupCount: 1,
    log,
    transport: new LoopbackNetwork().transportFor('s1'),
    stateMachine: () => new CountingMachine(),
    seed: 1,
    limits,
    balanceIntervalTicks: 0,
  });
  host.group(0).raw.campaign();
  host.runTurns();
  const storage = log.storages.get(0);
  if (storage === undefined) throw new Error('no storage for group 0');
  const write = (count: number) =>
    Promise.all(
      Array.from({ length: count }, (_, i) => host.propose({ groupId: 0, data: new Uint8Array([i + 1]) })),
    );
  return { host, storage, write };
}

describe('log truncation policy', () => {
  it('snapshots by interval (in host ticks) only once something was applied, and keeps the trailing entries', async () => {
    const { host, storage, write } = singleServer({
      snapshotThresholdEntries: 1_000_000,
      snapshotTrailingEntries: 3,
      snapshotIntervalTicks: 20,
    });
    await write(10);
    const applied = host.group(0).applied;
    for (let i = 0; i < 19; i++) host.tick();
    // 19 ticks: the interval has not passed yet.
    expect(storage.snapshot().metadata.index).toBe(0);
    host.tick();
    expect(storage.snapshot().metadata.index).toBe(applied);
    expect(host.group(0).lastSnapshot.index).toBe(applied);
    // The log keeps `snapshotTrailingEntries` entries behind the snapshot.
    expect(storage.firstIndex()).toBe(applied - 3 + 1);

    // Nothing applied since: however many ticks pass, no new snapshot.
    for (let i = 0; i < 100; i++) host.tick();
    expect(storage.snapshot().metadata.index).toBe(applied);

    // Something applied, long after the interval passed: snapshotted by the next tick at the latest.
    await write(1);
    const later = host.group(0).applied;
    expect(later).toBeGreaterThan(applied);
    host.tick();
    expect(storage.snapshot().metadata.index).toBe(later);
    host.stop();
  });

  it('with the interval off, snapshots only at the threshold', async () => {
    const { host, storage, write } = singleServer({
      snapshotThresholdEntries: 16,
      snapshotTrailingEntries: 0,
      snapshotIntervalTicks: 0,
    });
    await write(10);
    for (let i = 0; i < 500; i++) host.tick();
    expect(storage.snapshot().metadata.index).toBe(0);
    await write(10);
    const index = storage.snapshot().metadata.index;
    // Taken in the turn that applied the 16th entry since the last snapshot (or later in a batch).
    expect(index).toBeGreaterThanOrEqual(16);
    expect(storage.firstIndex()).toBe(index + 1);
    host.stop();
  });
});
