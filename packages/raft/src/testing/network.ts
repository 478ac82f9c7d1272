/**
 * A deterministic, synchronous in-memory cluster for the core's scenario tests: each
 * node persists to a MemoryStorage, applies to a list, and messages are delivered in
 * FIFO order until the cluster is quiet. Links can be cut, messages dropped or held
 * back, and a node's Ready processing paused, so a test reads like a transcript of what
 * each node saw.
 *
 * The state machine is a list of command strings; a snapshot's data is that list as
 * JSON, so a node restored from a snapshot can be compared with one that applied the log.
 *
 * Unless told otherwise, the network checks safety invariants after every Ready it
 * processes and throws RaftInvariantError when one breaks: per node, term and commit
 * never decrease and at most one vote is cast per term; across nodes, at most one leader
 * per term and every node applies the same entry at each index.
 */
import type { resolveConfig } from '../config.js';
import { assert, type RaftError, RaftInvariantError } from '../errors.js';
import { createPrng, type Prng } from '../prng.js';
import { type NodeReady, RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import type { Entry, HardState, Message, NodeId, ReadState, Snapshot } from '../types.js';

export interface TestNode {
  readonly id: NodeId;
  raw: RawNode;
  readonly storage: MemoryStorage;
  /** Every entry applied, in order, including no-ops and membership changes. */
  applied: Entry[];
  /** The state machine: application commands, restored from snapshots. */
  state: string[];
  readStates: ReadState[];
  droppedReadContexts: Uint8Array[];
  droppedReadErrors: RaftError[];
  snapshotsRestored: Snapshot[];
}

export type NodeOptions = Partial<Omit<Parameters<typeof resolveConfig>[0], 'id' | 'prng'>>;

export interface NetworkOptions {
  voters: NodeId[];
  learners?: NodeId[];
  seed?: number;
  node?: NodeOptions;
  /** Per-node overrides of `node`. */
  nodes?: Record<NodeId, NodeOptions>;
  /** Check safety invariants after every Ready (default true). */
  checkInvariants?: boolean;
  /** The PRNG each node draws its election timeouts from (default: seeded from `seed` and the id). */
  prngFor?: (id: NodeId) => Prng;
}

const deliveriesMax = 1_000_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Return false to drop a message in flight. */
  filter: ((message: Message) => boolean) | null = null;
  /** Replace a message in flight (after `filter`); return null to drop it. */
  rewrite: ((message: Message) => Message | null) | null = null;
  /** Return true to hold a message back (in `held`) instead of delivering it. */
  hold: ((message: Message) => boolean) | null = null;
  held: Message[] = [];
  /** Every message delivered to a node, in order. */
  readonly delivered: Message[] = [];
  /** Every message a node handed out in a Ready, in order, whether or not it arrived. */
  readonly sent: Message[] = [];
  /** Every Ready processed, in order. */
  readonly readys: { id: NodeId; ready: NodeReady }[] = [];
  /** Nodes whose Ready is left unprocessed: nothing is persisted, sent or applied. */
  readonly paused = new Set<NodeId>();
  /**
   * Nodes whose caller breaks the persistence contract: their Readys are processed and
   * their messages sent, but nothing reaches storage. Only for tests of the invariants.
   */
  readonly skipPersist = new Set<NodeId>();
  private readonly checkInvariants: boolean;
  private readonly hardStates = new Map<NodeId, HardState>();
  private readonly votes = new Map<string, NodeId>();
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly appliedAt = new Map<number, string>();

  constructor(private readonly options: NetworkOptions) {
    this.checkInvariants = options.checkInvariants ?? true;
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
    const prng = this.options.prngFor?.(id) ?? createPrng(seed);
    const raw = new RawNode({
      config: { id, prng, applied, ...this.options.node, ...this.options.nodes?.[id] },
      storage,
    });
    return {
      id,
      raw,
      storage,
      applied: [],
      state: [],
      readStates: [],
      droppedReadContexts: [],
      droppedReadErrors: [],
      snapshotsRestored: [],
    };
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, () => `no node ${id}`);
    return node;
  }

  raw(id: NodeId): RawNode {
    return this.node(id).raw;
  }

  /**
   * Restart a node from its storage alone, as after a crash: whatever its unprocessed
   * Ready held is lost, and so are messages in flight to or from it.
   */
  restart(id: NodeId): void {
    const node = this.node(id);
    const snapshot = node.storage.snapshot();
    const applied = snapshot.metadata.index;
    const fresh = this.makeNode(id, node.storage, applied);
    node.raw = fresh.raw;
    node.applied = node.applied.filter((entry) => entry.index <= applied);
    node.state = decodeState(snapshot.data);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    this.held = this.held.filter((m) => m.to !== id && m.from !== id);
    this.paused.delete(id);
  }

  restartAll(): void {
    for (const id of this.nodes.keys()) this.restart(id);
  }

  pause(id: NodeId): void {
    this.paused.add(id);
  }

  resume(id: NodeId): void {
    this.paused.delete(id);
    this.settle();
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

  /** Put held messages (those matching `which`, default all) back in flight, in order, and settle. */
  release(which: (message: Message) => boolean = () => true): void {
    const keep: Message[] = [];
    for (const message of this.held) {
      if (which(message)) this.queue.push(message);
      else keep.push(message);
    }
    this.held = keep;
    this.settle();
  }

  /** Drop held messages matching `which` (default all). */
  dropHeld(which: (message: Message) => boolean = () => true): void {
    this.held = this.held.filter((message) => !which(message));
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

  /** Tick every node until `done` holds, at most `ticksMax` times. Returns the ticks taken. */
  tickUntil(done: () => boolean, ticksMax: number): number {
    for (let i = 0; i < ticksMax; i++) {
      if (done()) return i;
      this.tickAll();
    }
    assert(done(), () => `condition not reached within ${ticksMax} ticks`);
    return ticksMax;
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
    const result = this.raw(id).propose(encoder.encode(text));
    this.settle();
    return result;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.status().role === 'leader').map((n) => n.id);
  }

  /** The application commands in a node's state machine, including those restored from a snapshot. */
  commands(id: NodeId): string[] {
    return [...this.node(id).state];
  }

  /** Messages handed out so far that match `which`. */
  sentWhere(which: (message: Message) => boolean): Message[] {
    return this.sent.filter(which);
  }

  private deliver(original: Message): void {
    if (this.cut.has(`${original.from}->${original.to}`)) return;
    if (this.filter !== null && !this.filter(original)) return;
    const message = this.rewrite === null ? original : this.rewrite(original);
    if (message === null) return;
    if (this.hold?.(message) === true) {
      this.held.push(message);
      return;
    }
    const target = this.nodes.get(message.to);
    if (target === undefined) return;
    this.delivered.push(message);
    target.raw.step(message);
  }

  /** Do one Ready's work in contract order. Returns whether there was any. */
  private processReady(node: TestNode): boolean {
    if (this.paused.has(node.id) || !node.raw.hasReady()) return false;
    const ready = node.raw.ready();
    this.readys.push({ id: node.id, ready });
    if (this.checkInvariants) this.checkReady(node, ready);
    if (!this.skipPersist.has(node.id)) {
      if (ready.snapshot !== null) node.storage.applySnapshot(ready.snapshot);
      node.storage.append(ready.entries);
      if (ready.hardState !== null) node.storage.setHardState(ready.hardState);
    }
    this.sent.push(...ready.messages, ...ready.messagesAfterPersist);
    this.queue.push(...ready.messages, ...ready.messagesAfterPersist);
    if (ready.snapshot !== null) {
      const index = ready.snapshot.metadata.index;
      node.snapshotsRestored.push(ready.snapshot);
      node.applied = node.applied.filter((e) => e.index <= index);
      node.state = decodeState(ready.snapshot.data);
    }
    for (const entry of ready.committedEntries) {
      node.applied.push(entry);
      if (entry.type === 0 && entry.data.byteLength > 0) node.state.push(decoder.decode(entry.data));
    }
    node.readStates.push(...ready.readStates);
    node.droppedReadContexts.push(...ready.droppedReads.map((r) => r.context));
    node.droppedReadErrors.push(...ready.droppedReads.map((r) => r.error));
    node.raw.advance();
    if (this.checkInvariants) this.checkLeader(node);
    return true;
  }

  private checkReady(node: TestNode, ready: NodeReady): void {
    const fail = (message: string): never => {
      throw new RaftInvariantError(`${node.id}: ${message}`);
    };
    const hs = ready.hardState;
    if (hs !== null) {
      const previous = this.hardStates.get(node.id);
      if (previous !== undefined) {
        if (hs.term < previous.term) fail(`term went backwards: ${previous.term} -> ${hs.term}`);
        if (hs.commit < previous.commit) fail(`commit went backwards: ${previous.commit} -> ${hs.commit}`);
      }
      this.hardStates.set(node.id, hs);
      if (hs.vote !== null) {
        const key = `${node.id}@${hs.term}`;
        const earlier = this.votes.get(key);
        if (earlier !== undefined && earlier !== hs.vote) {
          fail(`voted twice in term ${hs.term}: for ${earlier}, then for ${hs.vote}`);
        }
        this.votes.set(key, hs.vote);
      }
    }
    for (const entry of ready.committedEntries) {
      const key = `${entry.term}/${entry.type}/${Array.from(entry.data).join(',')}`;
      const earlier = this.appliedAt.get(entry.index);
      if (earlier !== undefined && earlier !== key) {
        fail(`applied a different entry at index ${entry.index} than another node`);
      }
      this.appliedAt.set(entry.index, key);
    }
  }

  private checkLeader(node: TestNode): void {
    const status = node.raw.status();
    if (status.role !== 'leader') return;
    const earlier = this.leaderOfTerm.get(status.term);
    if (earlier !== undefined && earlier !== node.id) {
      throw new RaftInvariantError(`two leaders in term ${status.term}: ${earlier} and ${node.id}`);
    }
    this.leaderOfTerm.set(status.term, node.id);
  }

  /** Take a snapshot of `id` at its applied index and compact, keeping `trailingEntries`. */
  compact(id: NodeId, options: { trailingEntries: number }): Snapshot {
    const node = this.node(id);
    const index = node.raw.status().applied;
    const snapshot = node.raw.createSnapshot({ index, data: encodeState(node.state) });
    node.storage.createSnapshot(snapshot);
    node.storage.compact(Math.max(0, index - options.trailingEntries));
    return snapshot;
  }
}

export function encodeState(state: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(state));
}

export function decodeState(data: Uint8Array): string[] {
  if (data.byteLength === 0) return [];
  const parsed: unknown = JSON.parse(decoder.decode(data));
  assert(
    Array.isArray(parsed) && parsed.every((x): x is string => typeof x === 'string'),
    'snapshot data is not a list of commands',
  );
  return parsed;
}

/** A stable text form of a Ready, for comparing runs byte for byte. */
export function serializeReady(ready: NodeReady): string {
  return JSON.stringify(ready, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return `bytes:${Array.from(value).join(',')}`;
    if (value instanceof Error) return { name: value.name, message: value.message };
    return value;
  });
}
