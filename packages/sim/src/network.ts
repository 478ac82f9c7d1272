import { entrySizeBytes, type Message } from '@conclave/raft';
import type { Rng } from './rng.js';

/**
 * The simulated network between the nodes of one cluster. It decides, per message, whether
 * it is lost, duplicated, and how long each copy takes; it holds the link matrix that the
 * fault scripts reshape (partitions, one-way cuts, rings, bridges); and it counts traffic.
 * Nodes are numbered 0..n-1; the network never looks inside a message beyond its size.
 */

/** Conditions that apply to every message; the fault schedule changes them over a run. */
export interface NetworkConditions {
  /** Probability that a message is lost, in [0, 1]. Faults use 0-0.3. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  readonly duplicateRate: number;
  /** Uniform extra delay per message in [0, jitterMs]; independent draws reorder messages. */
  readonly jitterMs: number;
  /** Probability that a message is held back much longer than usual. */
  readonly longDelayRate: number;
  /** A long-delayed message takes up to this much extra time (several election timeouts). */
  readonly longDelayMaxMs: number;
}

export interface NetworkOptions {
  readonly nodeCount: number;
  /** Each directed link draws a fixed base latency in [min, max] at creation. */
  readonly linkLatencyMinMs: number;
  readonly linkLatencyMaxMs: number;
  /** Messages in flight on one directed link beyond which new ones are dropped. */
  readonly linkQueueMessagesMax: number;
  readonly conditions: NetworkConditions;
}

export const reliableConditions: NetworkConditions = {
  dropRate: 0,
  duplicateRate: 0,
  jitterMs: 2,
  longDelayRate: 0,
  longDelayMaxMs: 0,
};

/** In the spirit of MIT 6.824's unreliable network: 10% loss, some duplicates, heavy jitter. */
export const unreliableConditions: NetworkConditions = {
  dropRate: 0.1,
  duplicateRate: 0.05,
  jitterMs: 25,
  longDelayRate: 0,
  longDelayMaxMs: 0,
};

/** Added on top of either profile for "long reordering": a few messages arrive very late. */
export const longReorderingConditions: Pick<NetworkConditions, 'longDelayRate' | 'longDelayMaxMs'> = {
  longDelayRate: 0.05,
  longDelayMaxMs: 1_000,
};

export const defaultNetworkLimits = {
  linkLatencyMinMs: 1,
  linkLatencyMaxMs: 5,
  linkQueueMessagesMax: 1_024,
} as const;

/** Fixed bytes charged per message for headers and framing. */
export const messageOverheadBytes = 64;

/** A deterministic size estimate: framing plus the payload a real codec would carry. */
export function messageSizeBytes(message: Message): number {
  switch (message.type) {
    case 'app': {
      let bytes = messageOverheadBytes;
      for (const entry of message.entries) bytes += entrySizeBytes(entry);
      return bytes;
    }
    case 'snap':
      return (
        messageOverheadBytes + message.data.byteLength + 64 + 16 * message.metadata.confState.voters.length
      );
    default:
      return messageOverheadBytes;
  }
}

export type DropReason = 'linkDown' | 'random' | 'linkQueueFull' | 'linkDownInFlight';

export interface Delivery {
  readonly atMs: number;
  readonly from: number;
  readonly to: number;
  readonly message: Message;
  /** 0 for the original, 1 for a duplicate. */
  readonly copy: number;
}

export interface SendResult {
  readonly deliveries: readonly Delivery[];
  /** Why the original was lost, or null when at least one copy is under way. */
  readonly dropped: DropReason | null;
}

export interface NetworkStats {
  messagesSent: number;
  bytesSent: number;
  messagesDelivered: number;
  bytesDelivered: number;
  messagesDuplicated: number;
  messagesDropped: number;
  droppedByReason: Record<DropReason, number>;
}

export class Network {
  readonly nodeCount: number;
  readonly linkQueueMessagesMax: number;
  #conditions: NetworkConditions;
  readonly #rng: Rng;
  /** linkLatencyMs[from][to]: the fixed part of each directed link's delay. */
  readonly #linkLatencyMs: number[][];
  /** up[from][to]: the shape the fault scripts set (partition, ring, cut...). */
  readonly #up: boolean[][];
  /** MIT-style connect/disconnect flags, kept apart from the shape so they compose. */
  readonly #connected: boolean[];
  readonly #inFlight: number[][];
  readonly #stats: NetworkStats = {
    messagesSent: 0,
    bytesSent: 0,
    messagesDelivered: 0,
    bytesDelivered: 0,
    messagesDuplicated: 0,
    messagesDropped: 0,
    droppedByReason: { linkDown: 0, random: 0, linkQueueFull: 0, linkDownInFlight: 0 },
  };

  constructor(options: NetworkOptions & { rng: Rng }) {
    const n = options.nodeCount;
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Network: bad nodeCount ${n}`);
    if (options.linkLatencyMinMs < 0 || options.linkLatencyMaxMs < options.linkLatencyMinMs) {
      throw new RangeError('Network: need 0 <= linkLatencyMinMs <= linkLatencyMaxMs');
    }
    if (!Number.isSafeInteger(options.linkQueueMessagesMax) || options.linkQueueMessagesMax < 1) {
      throw new RangeError('Network: linkQueueMessagesMax must be a positive integer');
    }
    validateConditions(options.conditions);
    this.nodeCount = n;
    this.linkQueueMessagesMax = options.linkQueueMessagesMax;
    this.#conditions = options.conditions;
    this.#rng = options.rng;
    const range = { min: options.linkLatencyMinMs, max: options.linkLatencyMaxMs };
    this.#linkLatencyMs = matrix(n, () => this.#rng.intBetween(range));
    this.#up = matrix(n, () => true);
    this.#connected = new Array<boolean>(n).fill(true);
    this.#inFlight = matrix(n, () => 0);
  }

  get conditions(): NetworkConditions {
    return this.#conditions;
  }

  setConditions(conditions: NetworkConditions): void {
    validateConditions(conditions);
    this.#conditions = conditions;
  }

  /** Whether a message sent now from `from` would be allowed onto the wire towards `to`. */
  linkUp(link: { from: number; to: number }): boolean {
    const { from, to } = link;
    this.#checkNode(from);
    this.#checkNode(to);
    if (from === to) return true;
    return (
      (this.#connected[from] ?? false) && (this.#connected[to] ?? false) && (this.#up[from]?.[to] ?? false)
    );
  }

  /**
   * Put a message on the wire. The link is checked now and again on arrival: a partition
   * that forms while a message is in flight loses it, as a cut cable would.
   */
  send(options: { from: number; to: number; message: Message; nowMs: number }): SendResult {
    const { from, to, message, nowMs } = options;
    const stats = this.#stats;
    const size = messageSizeBytes(message);
    stats.messagesSent++;
    stats.bytesSent += size;
    if (!this.linkUp({ from, to })) return this.#drop('linkDown');
    const c = this.#conditions;
    if (this.#rng.chance(c.dropRate)) return this.#drop('random');
    const copies = this.#rng.chance(c.duplicateRate) ? 2 : 1;
    const deliveries: Delivery[] = [];
    for (let copy = 0; copy < copies; copy++) {
      const row = this.#inFlight[from];
      const inFlight = row?.[to] ?? 0;
      if (row === undefined || inFlight >= this.linkQueueMessagesMax) {
        stats.messagesDropped++;
        stats.droppedByReason.linkQueueFull++;
        continue;
      }
      row[to] = inFlight + 1;
      if (copy > 0) stats.messagesDuplicated++;
      let delayMs =
        (this.#linkLatencyMs[from]?.[to] ?? 0) + this.#rng.intBetween({ min: 0, max: c.jitterMs });
      if (this.#rng.chance(c.longDelayRate))
        delayMs += this.#rng.intBetween({ min: 0, max: c.longDelayMaxMs });
      deliveries.push({ atMs: nowMs + delayMs, from, to, message, copy });
    }
    return { deliveries, dropped: deliveries.length === 0 ? 'linkQueueFull' : null };
  }

  /** A scheduled delivery is due: true if it reaches the node, false if its link went down. */
  arrive(delivery: Delivery): boolean {
    const row = this.#inFlight[delivery.from];
    const inFlight = row?.[delivery.to] ?? 0;
    if (row === undefined || inFlight <= 0) {
      throw new Error(`Network.arrive: no message in flight on ${delivery.from}->${delivery.to}`);
    }
    row[delivery.to] = inFlight - 1;
    if (!this.linkUp(delivery)) {
      this.#drop('linkDownInFlight');
      return false;
    }
    this.#stats.messagesDelivered++;
    this.#stats.bytesDelivered += messageSizeBytes(delivery.message);
    return true;
  }

  stats(): Readonly<NetworkStats> {
    const s = this.#stats;
    return { ...s, droppedByReason: { ...s.droppedByReason } };
  }

  inFlight(link: { from: number; to: number }): number {
    return this.#inFlight[link.from]?.[link.to] ?? 0;
  }

  // ---- Link shapes. Each replaces the whole shape; connect/disconnect flags stay as they are.

  /** Every link up and every node connected. */
  heal(): void {
    this.#setShape(() => true);
    this.#connected.fill(true);
  }

  /**
   * Symmetric partition: nodes reach exactly the nodes of their own group. A node named in
   * no group is isolated. Groups must not overlap.
   */
  partition(groups: readonly (readonly number[])[]): void {
    const groupOf = new Array<number>(this.nodeCount).fill(-1);
    groups.forEach((group, g) => {
      for (const node of group) {
        this.#checkNode(node);
        if (groupOf[node] !== -1) throw new RangeError(`partition: node ${node} is in two groups`);
        groupOf[node] = g;
      }
    });
    this.#setShape((from, to) => groupOf[from] !== -1 && groupOf[from] === groupOf[to]);
  }

  /** Split off `minority` from everyone else (a minority/majority split when it is smaller). */
  split(options: { minority: readonly number[] }): void {
    const minority = new Set(options.minority);
    const rest = this.#nodes().filter((i) => !minority.has(i));
    this.partition([[...minority], rest]);
  }

  /** Cut every link of `node`, both ways. */
  isolate(node: number): void {
    this.#checkNode(node);
    for (let other = 0; other < this.nodeCount; other++) {
      if (other === node) continue;
      this.#setLink({ from: node, to: other }, false);
      this.#setLink({ from: other, to: node }, false);
    }
  }

  /** Cut one direction only: `from` can no longer reach `to`, `to` still reaches `from`. */
  cutLink(link: { from: number; to: number }): void {
    this.#setLink(link, false);
  }

  restoreLink(link: { from: number; to: number }): void {
    this.#setLink(link, true);
  }

  /** Each node reaches only its two neighbours in `order` (default 0..n-1), wrapping around. */
  ring(options: { order?: readonly number[] } = {}): void {
    const order = options.order ?? this.#nodes();
    if (order.length !== this.nodeCount || new Set(order).size !== this.nodeCount) {
      throw new RangeError('ring: order must name every node once');
    }
    const position = new Array<number>(this.nodeCount).fill(0);
    order.forEach((node, p) => {
      this.#checkNode(node);
      position[node] = p;
    });
    const n = this.nodeCount;
    this.#setShape((from, to) => {
      const d = Math.abs((position[from] ?? 0) - (position[to] ?? 0));
      return d === 1 || d === n - 1;
    });
  }

  /**
   * Two halves that cannot reach each other, both reaching the one `bridge` node. With no
   * halves given, the other nodes are split in index order.
   */
  bridge(options: { bridge: number; halves?: readonly [readonly number[], readonly number[]] }): void {
    const { bridge } = options;
    this.#checkNode(bridge);
    const others = this.#nodes().filter((i) => i !== bridge);
    const cut = Math.ceil(others.length / 2);
    const halves = options.halves ?? [others.slice(0, cut), others.slice(cut)];
    const half = new Array<number>(this.nodeCount).fill(-1);
    halves.forEach((members, h) => {
      for (const node of members) {
        this.#checkNode(node);
        if (node === bridge || half[node] !== -1) throw new RangeError(`bridge: node ${node} placed twice`);
        half[node] = h;
      }
    });
    this.#setShape(
      (from, to) => from === bridge || to === bridge || (half[from] !== -1 && half[from] === half[to]),
    );
  }

  /** MIT 6.824's disconnect: node `node` reaches no one until connect(node). */
  disconnect(node: number): void {
    this.#checkNode(node);
    this.#connected[node] = false;
  }

  connect(node: number): void {
    this.#checkNode(node);
    this.#connected[node] = true;
  }

  isConnected(node: number): boolean {
    this.#checkNode(node);
    return this.#connected[node] ?? false;
  }

  /** The effective link matrix as rows of 0/1, e.g. "1100/1100/0011/0011"; for traces. */
  describe(): string {
    const rows: string[] = [];
    for (let from = 0; from < this.nodeCount; from++) {
      let row = '';
      for (let to = 0; to < this.nodeCount; to++) row += this.linkUp({ from, to }) ? '1' : '0';
      rows.push(row);
    }
    return rows.join('/');
  }

  #drop(reason: DropReason): SendResult {
    this.#stats.messagesDropped++;
    this.#stats.droppedByReason[reason]++;
    return { deliveries: [], dropped: reason };
  }

  #setShape(up: (from: number, to: number) => boolean): void {
    for (let from = 0; from < this.nodeCount; from++) {
      for (let to = 0; to < this.nodeCount; to++) this.#setLink({ from, to }, from === to || up(from, to));
    }
  }

  #setLink(link: { from: number; to: number }, up: boolean): void {
    this.#checkNode(link.from);
    this.#checkNode(link.to);
    const row = this.#up[link.from];
    if (row !== undefined) row[link.to] = up;
  }

  #nodes(): number[] {
    return Array.from({ length: this.nodeCount }, (_, i) => i);
  }

  #checkNode(node: number): void {
    if (!Number.isSafeInteger(node) || node < 0 || node >= this.nodeCount) {
      throw new RangeError(`no node ${node} in a network of ${this.nodeCount}`);
    }
  }
}

function matrix<T>(n: number, fill: () => T): T[][] {
  return Array.from({ length: n }, () => Array.from({ length: n }, fill));
}

function validateConditions(c: NetworkConditions): void {
  const rate = (name: string, value: number): void => {
    if (!(value >= 0 && value <= 1)) throw new RangeError(`Network: ${name} must be in [0, 1], got ${value}`);
  };
  rate('dropRate', c.dropRate);
  rate('duplicateRate', c.duplicateRate);
  rate('longDelayRate', c.longDelayRate);
  for (const [name, value] of [
    ['jitterMs', c.jitterMs],
    ['longDelayMaxMs', c.longDelayMaxMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Network: ${name} must be a non-negative integer, got ${value}`);
    }
  }
}
