import { EntryType, entrySizeBytes, type LogStorage } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import type { GroupLimits } from './group.js';
import { MultiRaftHost } from './host.js';
import { CountingMachine } from './testing/counting-machine.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';

function singleServer(
  limits: Partial<GroupLimits>,
  log = new MemoryDurableLog({ groupCount: 1, voters: ['s1'] }),
) {
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
  /** One proposal at a time, each of `valueBytes`, so each apply is its own turn. */
  const writeEach = async (options: { count: number; valueBytes: number }) => {
    for (let i = 0; i < options.count; i++) {
      await host.propose({ groupId: 0, data: new Uint8Array(options.valueBytes).fill(i + 1) });
    }
  };
  return { host, log, storage, write, writeEach };
}

/** Bytes of the log's entries in [lo, hi], as the byte bounds count them. */
function loggedBytes(storage: LogStorage, range: { lo: number; hi: number }): number {
  return storage
    .entries({ lo: range.lo, hi: range.hi + 1, bytesMax: Number.POSITIVE_INFINITY })
    .reduce((sum, entry) => sum + entrySizeBytes(entry), 0);
}

const kib = 1024;
/** One 1 KiB entry as the byte bounds count it. */
const entryBytes = entrySizeBytes({ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(kib) });

/** Counts like CountingMachine, with a snapshot padded to `snapshotBytes`, as a large state's would be. */
class LargeStateMachine extends CountingMachine {
  constructor(private readonly snapshotBytes: number) {
    super();
  }

  override snapshot(): Uint8Array {
    const count = super.snapshot();
    const data = new Uint8Array(this.snapshotBytes);
    data.set(count);
    return data;
  }

  override restore(data: Uint8Array): void {
    super.restore(data.subarray(0, data.indexOf(0) === -1 ? data.length : data.indexOf(0)));
  }
}

describe('log truncation policy', () => {
  it('by interval, a large state is snapshotted only once the log since is worth it (snapshotIntervalLogRatioMin)', async () => {
    const log = new MemoryDurableLog({ groupCount: 1, voters: ['s1'] });
    const host = new MultiRaftHost<number>({
      nodeId: 's1',
      groupCount: 1,
      log,
      transport: new LoopbackNetwork().transportFor('s1'),
      stateMachine: () => new LargeStateMachine(64 * kib),
      seed: 1,
      limits: {
        snapshotThresholdEntries: 1_000_000,
        snapshotIntervalTicks: 5,
        snapshotIntervalLogRatioMin: 1 / 8,
      },
      balanceIntervalTicks: 0,
    });
    host.group(0).raw.campaign();
    host.runTurns();
    const storage = log.storages.get(0);
    if (storage === undefined) throw new Error('no storage');
    const writeKib = async (count: number) => {
      for (let i = 0; i < count; i++) await host.propose({ groupId: 0, data: new Uint8Array(kib).fill(1) });
    };
    const ticks = (n: number) => {
      for (let i = 0; i < n; i++) host.tick();
    };
    // The first snapshot: the last one (the empty bootstrap) weighs nothing.
    await writeKib(1);
    ticks(5);
    const first = storage.snapshot().metadata.index;
    expect(first).toBe(host.group(0).applied);
    // 4 KiB written against a 64 KiB snapshot: under 1/8, so many intervals pass without one.
    await writeKib(4);
    ticks(50);
    expect(storage.snapshot().metadata.index).toBe(first);
    // Past 8 KiB (1/8 of 64 KiB), with the interval long passed: taken as soon as the log is worth it.
    await writeKib(5);
    ticks(5);
    const second = storage.snapshot().metadata.index;
    expect(second).toBeGreaterThan(first);
    expect(second - first).toBeGreaterThanOrEqual(8);
    host.stop();
  });

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

  it('snapshots once the bytes applied since the last snapshot reach the byte threshold, far below the count threshold', async () => {
    const { host, storage, writeEach } = singleServer({
      snapshotThresholdEntries: 1_000_000,
      snapshotThresholdBytes: 10 * entryBytes,
      snapshotTrailingEntries: 1_000_000,
      snapshotIntervalTicks: 0,
    });
    // The leader's empty entry (24 B) and 9 entries of 1 KiB: just under 10 KiB + overheads.
    await writeEach({ count: 9, valueBytes: kib });
    expect(storage.snapshot().metadata.index).toBe(0);
    await writeEach({ count: 1, valueBytes: kib });
    const first = host.group(0).applied;
    expect(storage.snapshot().metadata.index).toBe(first);
    // The count restarts from the snapshot: 9 more KiB do not reach it, the 10th does.
    await writeEach({ count: 9, valueBytes: kib });
    expect(storage.snapshot().metadata.index).toBe(first);
    await writeEach({ count: 1, valueBytes: kib });
    expect(storage.snapshot().metadata.index).toBe(host.group(0).applied);
    host.stop();
  });

  it('keeps at most the trailing bytes behind a snapshot, the newest entries, when they hold fewer entries than the trailing count', async () => {
    const { host, storage, writeEach } = singleServer({
      snapshotThresholdEntries: 20,
      snapshotTrailingEntries: 1000,
      // Room for 3 entries of 1 KiB, not 4.
      snapshotTrailingBytesMax: 4 * entryBytes - 1,
      snapshotIntervalTicks: 0,
    });
    await writeEach({ count: 19, valueBytes: kib });
    const index = storage.snapshot().metadata.index;
    expect(index).toBe(20);
    expect(storage.firstIndex()).toBe(index - 3 + 1);
    expect(loggedBytes(storage, { lo: storage.firstIndex(), hi: index })).toBe(3 * entryBytes);
    host.stop();
  });

  it('keeps the trailing count when it is the smaller bound, and never compacts past the snapshot', async () => {
    const counted = singleServer({
      snapshotThresholdEntries: 20,
      snapshotTrailingEntries: 2,
      snapshotTrailingBytesMax: 1_000_000,
      snapshotIntervalTicks: 0,
    });
    await counted.writeEach({ count: 19, valueBytes: kib });
    expect(counted.storage.firstIndex()).toBe(20 - 2 + 1);
    counted.host.stop();

    const none = singleServer({
      snapshotThresholdEntries: 20,
      snapshotTrailingEntries: 1000,
      snapshotTrailingBytesMax: 0,
      snapshotIntervalTicks: 0,
    });
    await none.writeEach({ count: 19, valueBytes: kib });
    expect(none.storage.snapshot().metadata.index).toBe(20);
    expect(none.storage.firstIndex()).toBe(21);
    none.host.stop();
  });

  it('after a restart, measures the entries the log still holds, so the byte bounds stay exact', async () => {
    const limits = {
      snapshotThresholdEntries: 20,
      snapshotTrailingEntries: 1000,
      // 25 entries of 1 KiB, minus one byte.
      snapshotTrailingBytesMax: 25 * entryBytes - 1,
      snapshotIntervalTicks: 0,
    };
    const before = singleServer(limits);
    await before.writeEach({ count: 19, valueBytes: kib });
    // Snapshot at 20; all 20 entries fit in the trailing bytes (the first is an empty one).
    expect(before.storage.snapshot().metadata.index).toBe(20);
    expect(before.storage.firstIndex()).toBe(1);
    before.host.stop();

    // A new host on the same log; its leader's empty entry is 21.
    const after = singleServer(limits, before.log);
    await after.writeEach({ count: 19, valueBytes: kib });
    expect(after.storage.snapshot().metadata.index).toBe(40);
    // Behind 40: 22..40 (19 KiB entries) and 21 (empty) fit, and so do 5 of the entries from
    // before the restart (16..20), whose sizes were measured at start; a 6th would not fit.
    expect(after.storage.firstIndex()).toBe(16);
    const kept = loggedBytes(after.storage, { lo: 16, hi: 40 });
    expect(kept).toBeLessThanOrEqual(limits.snapshotTrailingBytesMax);
    expect(kept + entryBytes).toBeGreaterThan(limits.snapshotTrailingBytesMax);
    after.host.stop();
  });
});
