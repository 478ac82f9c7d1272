/**
 * The core benchmark: a 3-node cluster in one process with no I/O, messages handed
 * straight from one RawNode to the next. It measures what the consensus core alone
 * costs, so the numbers bound what any server built on it can reach.
 */
import { performance } from 'node:perf_hooks';
import { createPrng, MemoryStorage, type Message, RawNode } from '@conclave/raft';

export interface CoreBenchCase {
  readonly entryBytes: number;
  /** Proposals made between two rounds of Ready processing. */
  readonly batchEntries: number;
  readonly totalEntries: number;
}

export interface CoreBenchResult extends CoreBenchCase {
  readonly committedEntries: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly entriesPerSecond: number;
  readonly cpuNsPerEntry: number;
}

interface BenchNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  applied: number;
}

const ids = ['n1', 'n2', 'n3'];
/** Compact the in-memory log every this many entries, so memory stays flat over long runs. */
const compactEveryEntries = 50_000;

function createCluster(): Map<string, BenchNode> {
  const nodes = new Map<string, BenchNode>();
  ids.forEach((id, i) => {
    const storage = MemoryStorage.bootstrap({ voters: ids });
    const raw = new RawNode({
      config: { id, prng: createPrng(i + 1), inflightMessagesMax: 1024, uncommittedBytesMax: 1 << 30 },
      storage,
    });
    nodes.set(id, { raw, storage, applied: 0 });
  });
  return nodes;
}

/** Drive every Ready and deliver every message until the cluster is quiet. */
function settle(nodes: Map<string, BenchNode>): void {
  let queue: Message[] = [];
  for (;;) {
    let moved = false;
    for (const node of nodes.values()) {
      if (!node.raw.hasReady()) continue;
      moved = true;
      const ready = node.raw.ready();
      if (ready.snapshot !== null) node.storage.applySnapshot(ready.snapshot);
      node.storage.append(ready.entries);
      if (ready.hardState !== null) node.storage.setHardState(ready.hardState);
      for (const m of ready.messages) queue.push(m);
      for (const m of ready.messagesAfterPersist) queue.push(m);
      const last = ready.committedEntries[ready.committedEntries.length - 1];
      if (last !== undefined) node.applied = last.index;
      node.raw.advance();
    }
    if (queue.length > 0) {
      moved = true;
      const batch = queue;
      queue = [];
      for (const m of batch) nodes.get(m.to)?.raw.step(m);
    }
    if (!moved) return;
  }
}

function compact(node: BenchNode): void {
  const index = node.applied;
  if (index - node.storage.snapshot().metadata.index < compactEveryEntries) return;
  const snapshot = node.raw.createSnapshot({ index, data: new Uint8Array(0) });
  node.storage.createSnapshot(snapshot);
  node.storage.compact(index);
}

export function runCoreBench(benchCase: CoreBenchCase): CoreBenchResult {
  const nodes = createCluster();
  const leader = nodes.get('n1');
  if (leader === undefined) throw new Error('no leader node');
  leader.raw.campaign();
  settle(nodes);
  if (leader.raw.status().role !== 'leader') throw new Error('n1 failed to become leader');
  const start = leader.applied;
  const payload = new Uint8Array(benchCase.entryBytes).fill(7);
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let proposed = 0;
  while (proposed < benchCase.totalEntries) {
    for (let i = 0; i < benchCase.batchEntries && proposed < benchCase.totalEntries; i++, proposed++) {
      const result = leader.raw.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.error.message}`);
    }
    settle(nodes);
    for (const node of nodes.values()) compact(node);
  }
  const wallMs = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const committedEntries = leader.applied - start - 0;
  for (const node of nodes.values()) {
    if (node.applied < leader.applied)
      throw new Error(`a follower applied ${node.applied} < ${leader.applied}`);
  }
  return {
    ...benchCase,
    committedEntries,
    wallMs,
    cpuMs,
    entriesPerSecond: (committedEntries / wallMs) * 1000,
    cpuNsPerEntry: (cpuMs * 1e6) / committedEntries,
  };
}
