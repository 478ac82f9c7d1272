/**
 * In-memory stand-ins for the host's ports, for tests: a durable log of MemoryStorages
 * that counts persists (each is one "fsync"), and a loopback network of hosts.
 */
import { type LogStorage, MemoryStorage, type NodeId, type Snapshot } from '@conclave/raft';
import type { DurableLog, Envelope, GroupId, GroupWrite, PeerTransport } from '../ports.js';

export class MemoryDurableLog implements DurableLog {
  readonly storages = new Map<GroupId, MemoryStorage>();
  persistCalls = 0;
  /** Persists that had to fsync; the others only carried commit-index changes. */
  syncedPersistCalls = 0;

  constructor(options: { groupCount: number; voters: readonly NodeId[] }) {
    for (let g = 0; g < options.groupCount; g++)
      this.storages.set(g, MemoryStorage.bootstrap({ voters: options.voters }));
  }

  storage(groupId: GroupId): LogStorage {
    const storage = this.storages.get(groupId);
    if (storage === undefined) throw new Error(`no group ${groupId}`);
    return storage;
  }

  persist(writes: readonly GroupWrite[], options: { sync: boolean } = { sync: true }): void {
    this.persistCalls++;
    if (options.sync) this.syncedPersistCalls++;
    for (const write of writes) {
      const storage = this.storages.get(write.groupId);
      if (storage === undefined) throw new Error(`no group ${write.groupId}`);
      if (write.snapshot !== null) storage.applySnapshot(write.snapshot);
      storage.append(write.entries);
      if (write.hardState !== null) storage.setHardState(write.hardState);
    }
  }

  saveSnapshot(options: { groupId: GroupId; snapshot: Snapshot; compactIndex: number }): void {
    const storage = this.storages.get(options.groupId);
    if (storage === undefined) throw new Error(`no group ${options.groupId}`);
    storage.createSnapshot(options.snapshot);
    storage.compact(options.compactIndex);
  }
}

/** Delivers between hosts in the same process, with links that can be cut. */
export class LoopbackNetwork {
  private readonly receivers = new Map<NodeId, (envelopes: readonly Envelope[]) => void>();
  private readonly down = new Set<NodeId>();
  sends = 0;

  register(id: NodeId, receive: (envelopes: readonly Envelope[]) => void): void {
    this.receivers.set(id, receive);
  }

  transportFor(from: NodeId): PeerTransport {
    return {
      send: (to, envelopes) => {
        this.sends++;
        if (this.down.has(from) || this.down.has(to)) return;
        const receive = this.receivers.get(to);
        if (receive !== undefined) queueMicrotask(() => receive(envelopes));
      },
    };
  }

  setDown(id: NodeId, down: boolean): void {
    if (down) this.down.add(id);
    else this.down.delete(id);
  }
}
