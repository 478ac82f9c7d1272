import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '@conclave/raft';
import { crcSliceBytesMax, DurableStorage, NodeDisk } from '@conclave/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { MultiRaftHost } from './host.js';
import type { DurableLog, StateMachine } from './ports.js';
import { LoopbackNetwork } from './testing/in-memory.js';

/** Counts applies; its snapshot is the count padded to several checksum slices. */
class PaddedCountingMachine implements StateMachine<number> {
  applied = 0;

  apply(_entry: Entry): number {
    return ++this.applied;
  }

  snapshot(): Uint8Array {
    const data = new Uint8Array(8 * crcSliceBytesMax);
    new DataView(data.buffer).setFloat64(0, this.applied);
    return data;
  }

  restore(data: Uint8Array): void {
    this.applied = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0);
  }
}

const root = mkdtempSync(join(tmpdir(), 'conclave-host-snap-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The agent's wiring: DurableStorage on the real disk, snapshots saved in the background. */
function server(dir: string) {
  const storage = DurableStorage.open({ disk: new NodeDisk(), dir });
  if (storage.wal.groupIds().length === 0) {
    const metadata = { index: 0, term: 0, confState: { voters: ['s1'], learners: [] } };
    storage.persist([
      { groupId: 0, entries: [], hardState: null, snapshot: { metadata, data: new Uint8Array(0) } },
    ]);
  }
  /** Every background save, so tests wait on the write itself rather than poll for it. */
  const saves: Promise<boolean>[] = [];
  const log: DurableLog = {
    storage: (groupId) => storage.group(groupId),
    persist: (writes, options) => storage.persist(writes, options),
    saveSnapshot: (o) => {
      const saving = storage.saveSnapshotInBackground({
        groupId: o.groupId,
        snapshot: o.snapshot,
        compactThroughIndex: o.compactIndex,
      });
      saves.push(saving);
      return saving;
    },
  };

  const machine = new PaddedCountingMachine();
  const host = new MultiRaftHost<number>({
    nodeId: 's1',
    groupCount: 1,
    log,
    transport: new LoopbackNetwork().transportFor('s1'),
    stateMachine: () => machine,
    seed: 1,
    limits: { snapshotThresholdEntries: 10, snapshotTrailingEntries: 2, snapshotIntervalTicks: 0 },
    balanceIntervalTicks: 0,
  });
  host.group(0).raw.campaign();
  host.runTurns();
  const write = async (count: number) => {
    for (let i = 0; i < count; i++) await host.propose({ groupId: 0, data: new Uint8Array([i + 1]) });
  };
  /** The last save settled, and the group's continuation of it ran. */
  const saved = async () => {
    await saves[saves.length - 1];
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return { storage, host, machine, write, saves, saved };
}

describe('a host on durable storage', () => {
  it('writes snapshot files in the background, compacts after, and restarts from them', async () => {
    const dir = join(root, 'restart');
    const first = server(dir);
    await first.write(12);
    const group = first.host.group(0);
    expect(group.snapshotWriteInFlight).toBe(true);
    // Applies go on while the file is written; the log is compacted only once it is stored.
    await first.write(3);
    expect(first.storage.group(0).snapshotMetadata().index).toBe(0);
    expect(first.storage.group(0).firstIndex()).toBe(1);
    expect(first.saves).toHaveLength(1);
    await first.saved();
    expect(group.snapshotWriteInFlight).toBe(false);
    const index = group.lastSnapshot.index;
    expect(index).toBeGreaterThanOrEqual(10);
    expect(first.storage.group(0).snapshotMetadata().index).toBe(index);
    expect(first.storage.group(0).firstIndex()).toBe(index - 2 + 1);
    const applied = first.machine.applied;
    first.host.stop();
    first.storage.close();

    const second = server(dir);
    expect(second.storage.group(0).snapshot().metadata.index).toBe(index);
    // Restored from the file, then the entries after it applied again.
    await second.write(1);
    expect(second.machine.applied).toBe(applied + 1);
    second.host.stop();
    second.storage.close();
  });

  it('abandons a write in flight at shutdown: the restart uses the previous snapshot, no file left behind', async () => {
    const dir = join(root, 'shutdown');
    const first = server(dir);
    await first.write(12);
    expect(first.host.group(0).snapshotWriteInFlight).toBe(true);
    const applied = first.machine.applied;
    first.host.stop();
    first.storage.close();
    expect(await first.saves[0]).toBe(false);

    const second = server(dir);
    expect(second.storage.group(0).snapshotMetadata().index).toBe(0);
    expect(readdirSync(join(dir, 'snap')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    await second.write(1);
    expect(second.machine.applied).toBe(applied + 1);
    second.host.stop();
    second.storage.close();
  });
});
