/**
 * A deterministic, synchronous in-memory cluster for the core's scenario tests: each
 * node persists to a MemoryStorage, applies to a list, and messages are delivered in
 * FIFO order until the cluster is quiet. Links can be cut and messages filtered, so a
 * test reads like a transcript of what each node saw.
 */
import type { resolveConfig } from '../config.js';
import { assert } from '../errors.js';
import { createPrng } from '../prng.js';
import { RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import type { Entry, Message, NodeId, ReadState, Snapshot } from '../types.js';

export interface TestNode {
  readonly id: NodeId;
  raw: RawNode;
  readonly storage: MemoryStorage;
  /** Every entry applied, in order, including no-ops and membership changes. */
  applied: Entry[];
  readStates: ReadState[];
  droppedReadContexts: Uint8Array[];
  snapshotsRestored: Snapshot[];
}

export type NodeOptions = Partial<Omit<Parameters<typeof resolveConfig>[0], 'id' | 'prng'>>;

const deliveriesMax = 1_000_000;

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Return false to drop a message in flight. */
  filter: ((message: Message) => boolean) | null = null;
  readonly delivered: Message[] = [];
  recordDelivered = false;

  constructor(
    private readonly options: { voters: NodeId[]; learners?: NodeId[]; seed?: number; node?: NodeOptions },
  ) {
    for (const id of [...options.voters, ...(options.learners ?? [])]) {
      const storage = MemoryStorage.bootstrap({ voters: options.voters, learners: options.learners ?? [] });
      this.nodes.set(id, this.makeNode(id, storage, 0));
    }
  }

  /** Add a node with an empty log and no membership: it waits to be added and caught up. */
  addBlankNode(id: NodeId): TestNode {
    const node = this.makeNode(id, new MemoryStorage(), 0);
    this.nodes.set(id, node);
    return node;
  }

  private makeNode(id: NodeId, storage: MemoryStorage, applied: number): TestNode {
    const seed = (this.options.seed ?? 1) * 1000 + [...id].reduce((a, c) => a + c.charCodeAt(0), 0);
    const raw = new RawNode({
      config: { id, prng: createPrng(seed), applied, ...this.options.node },
      storage,
    });
    return { id, raw, storage, applied: [], readStates: [], droppedReadContexts: [], snapshotsRestored: [] };
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, () => `no node ${id}`);
    return node;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  /** Restart a node from its storage alone, as after a crash once its last Ready was durable. */
  restart(id: NodeId): void {
    const node = this.node(id);
    const applied = node.storage.snapshot().metadata.index;
    const fresh = this.makeNode(id, node.storage, applied);
    node.raw = fresh.raw;
    node.applied = node.applied.filter((entry) => entry.index <= applied);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(options: { from: NodeId; to: NodeId }): void {
    this.cut.add(`${options.from}->${options.to}`);
  }

  partition(groups: NodeId[][]): void {
    this.heal();
    for (const a of groups)
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut.add(`${x}->${y}`);
      }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Drive every node's Ready, then deliver messages until nothing moves. */
  settle(): void {
    for (let i = 0; i < deliveriesMax; i++) {
      let progressed = false;
      for (const node of this.nodes.values()) if (this.processReady(node)) progressed = true;
      const message = this.queue.shift();
      if (message !== undefined) {
        progressed = true;
        this.deliver(message);
      }
      if (!progressed) return;
    }
    throw new Error(`network did not settle within ${deliveriesMax} deliveries`);
  }

  tick(id: NodeId, count = 1): void {
    for (let i = 0; i < count; i++) {
      this.raw(id).tick();
      this.settle();
    }
  }

  tickAll(count = 1): void {
    for (let i = 0; i < count; i++) {
      for (const node of this.nodes.values()) node.raw.tick();
      this.settle();
    }
  }

  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.settle();
  }

  /** Elect `id` by letting it campaign, then settle. Asserts it won. */
  elect(id: NodeId): void {
    this.campaign(id);
    assert(this.raw(id).status().role === 'leader', () => `${id} did not win: ${this.raw(id).status().role}`);
  }

  propose(id: NodeId, text: string) {
    const result = this.raw(id).propose(new TextEncoder().encode(text));
    this.settle();
    return result;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.status().role === 'leader').map((n) => n.id);
  }

  /** The application commands a node has applied, as text, skipping no-ops and membership changes. */
  commands(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === 0 && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }

  private deliver(message: Message): void {
    if (this.cut.has(`${message.from}->${message.to}`)) return;
    if (this.filter !== null && !this.filter(message)) return;
    const target = this.nodes.get(message.to);
    if (target === undefined) return;
    if (this.recordDelivered) this.delivered.push(message);
    target.raw.step(message);
  }

  /** Do one Ready's work in contract order. Returns whether there was any. */
  private processReady(node: TestNode): boolean {
    if (!node.raw.hasReady()) return false;
    const ready = node.raw.ready();
    if (ready.snapshot !== null) node.storage.applySnapshot(ready.snapshot);
    node.storage.append(ready.entries);
    if (ready.hardState !== null) node.storage.setHardState(ready.hardState);
    this.queue.push(...ready.messages, ...ready.messagesAfterPersist);
    if (ready.snapshot !== null) {
      node.snapshotsRestored.push(ready.snapshot);
      node.applied = node.applied.filter((e) => e.index <= (ready.snapshot?.metadata.index ?? 0));
    }
    node.applied.push(...ready.committedEntries);
    node.readStates.push(...ready.readStates);
    node.droppedReadContexts.push(...ready.droppedReads.map((r) => r.context));
    node.raw.advance();
    return true;
  }

  /** Take a snapshot of `id` at its applied index and compact, keeping `trailingEntries`. */
  compact(id: NodeId, options: { trailingEntries: number; data?: Uint8Array }): Snapshot {
    const node = this.node(id);
    const index = node.raw.status().applied;
    const snapshot = node.raw.createSnapshot({
      index,
      data: options.data ?? new TextEncoder().encode(`snap@${index}`),
    });
    node.storage.createSnapshot(snapshot);
    node.storage.compact(Math.max(0, index - options.trailingEntries));
    return snapshot;
  }
}
