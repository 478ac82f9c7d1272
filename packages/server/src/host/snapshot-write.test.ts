import type { Snapshot } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { MultiRaftHost } from './host.js';
import type { DurableLog, GroupId, GroupWrite } from './ports.js';
import { CountingMachine } from './testing/counting-machine.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';

interface PendingSave {
  readonly index: number;
  /** Finish the background write: stored (the log records and compacts) or abandoned. */
  finish(stored: boolean): void;
}

/** A durable log whose snapshot saves finish when the test says, as a background write does. */
class DeferredSnapshotLog implements DurableLog {
  readonly inner = new MemoryDurableLog({ groupCount: 1, voters: ['s1'] });
  readonly pending: PendingSave[] = [];

  storage(groupId: GroupId) {
    return this.inner.storage(groupId);
  }

  persist(writes: readonly GroupWrite[], options?: { sync: boolean }): void {
    this.inner.persist(writes, options);
  }

  saveSnapshot(options: { groupId: GroupId; snapshot: Snapshot; compactIndex: number }): Promise<boolean> {
    return new Promise((resolve) => {
      this.pending.push({
        index: options.snapshot.metadata.index,
        finish: (stored) => {
          if (stored) this.inner.saveSnapshot(options);
          resolve(stored);
        },
      });
    });
  }
}

function singleServer() {
  const log = new DeferredSnapshotLog();
  const host = new MultiRaftHost<number>({
    nodeId: 's1',
    groupCount: 1,
    log,
    transport: new LoopbackNetwork().transportFor('s1'),
    stateMachine: () => new CountingMachine(),
    seed: 1,
    limits: { snapshotThresholdEntries: 10, snapshotTrailingEntries: 2, snapshotIntervalTicks: 0 },
    balanceIntervalTicks: 0,
  });
  host.group(0).raw.campaign();
  host.runTurns();
  const storage = log.inner.storage(0);
  const write = async (count: number) => {
    for (let i = 0; i < count; i++) await host.propose({ groupId: 0, data: new Uint8Array([i + 1]) });
  };
  /** Let the continuation of a finished save run. */
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return { host, log, storage, write, settle };
}

describe('snapshots stored in the background', () => {
  it('keep the log whole and start no other snapshot until the write finishes, then compact', async () => {
    const { host, log, storage, write, settle } = singleServer();
    await write(12);
    const group = host.group(0);
    expect(log.pending).toHaveLength(1);
    const first = log.pending[0];
    if (first === undefined) throw new Error('no snapshot handed to the log');
    expect(group.snapshotWriteInFlight).toBe(true);
    // Not durable yet: neither the log nor the group's policy moved.
    expect(group.lastSnapshot.index).toBe(0);
    expect(storage.firstIndex()).toBe(1);
    // Past the threshold again, but one write at a time per group.
    await write(15);
    expect(log.pending).toHaveLength(1);
    first.finish(true);
    await settle();
    expect(group.snapshotWriteInFlight).toBe(false);
    expect(group.lastSnapshot.index).toBe(first.index);
    expect(storage.snapshot().metadata.index).toBe(first.index);
    expect(storage.firstIndex()).toBe(first.index - 2 + 1);
    // The entries applied meanwhile are due: the group's next turn starts the next snapshot.
    await write(1);
    expect(log.pending).toHaveLength(2);
    expect(log.pending[1]?.index).toBeGreaterThanOrEqual(first.index + 15);
    host.stop();
  });

  it('leave the group at its previous snapshot when abandoned, and let a later one start', async () => {
    const { host, log, storage, write, settle } = singleServer();
    await write(12);
    const group = host.group(0);
    log.pending[0]?.finish(false);
    await settle();
    expect(group.snapshotWriteInFlight).toBe(false);
    expect(group.lastSnapshot.index).toBe(0);
    expect(storage.snapshot().metadata.index).toBe(0);
    expect(storage.firstIndex()).toBe(1);
    await write(1);
    expect(log.pending).toHaveLength(2);
    log.pending[1]?.finish(true);
    await settle();
    expect(group.lastSnapshot.index).toBe(log.pending[1]?.index);
    host.stop();
  });
});
