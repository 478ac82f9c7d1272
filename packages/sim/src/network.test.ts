import type { Message } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import {
  type Delivery,
  messageOverheadBytes,
  messageSizeBytes,
  Network,
  type NetworkConditions,
  reliableConditions,
} from './network.js';
import { Rng } from './rng.js';

const quiet: NetworkConditions = { ...reliableConditions, jitterMs: 0 };

function network(options: {
  nodeCount: number;
  conditions?: NetworkConditions;
  linkQueueMessagesMax?: number;
}) {
  return new Network({
    nodeCount: options.nodeCount,
    linkLatencyMinMs: 1,
    linkLatencyMaxMs: 5,
    linkQueueMessagesMax: options.linkQueueMessagesMax ?? 1_000,
    conditions: options.conditions ?? quiet,
    rng: Rng.fork({ seed: 42, label: 'network-test' }),
  });
}

function heartbeat(from: number, to: number): Message {
  return { type: 'heartbeat', from: `n${from}`, to: `n${to}`, term: 1, commit: 0, round: 0 };
}

/** The reachability matrix, found by sending one message per link and delivering it. */
function reach(net: Network): string {
  const rows: string[] = [];
  for (let from = 0; from < net.nodeCount; from++) {
    let row = '';
    for (let to = 0; to < net.nodeCount; to++) {
      if (from === to) {
        row += '1';
        continue;
      }
      const { deliveries } = net.send({ from, to, message: heartbeat(from, to), nowMs: 0 });
      row += deliveries.length > 0 && deliveries.every((d) => net.arrive(d)) ? '1' : '0';
    }
    rows.push(row);
  }
  return rows.join('/');
}

describe('Network link shapes', () => {
  it('is fully connected at first and after heal', () => {
    const net = network({ nodeCount: 3 });
    expect(reach(net)).toBe('111/111/111');
    net.partition([[0], [1, 2]]);
    net.heal();
    expect(reach(net)).toBe('111/111/111');
  });

  it('partitions symmetrically into groups, isolating nodes in no group', () => {
    const net = network({ nodeCount: 5 });
    net.partition([
      [0, 1],
      [2, 3],
    ]);
    expect(reach(net)).toBe('11000/11000/00110/00110/00001');
    expect(net.describe()).toBe('11000/11000/00110/00110/00001');
    expect(() => net.partition([[0, 1], [1]])).toThrow(RangeError);
  });

  it('splits a minority from the majority', () => {
    const net = network({ nodeCount: 5 });
    net.split({ minority: [1, 3] });
    expect(reach(net)).toBe('10101/01010/10101/01010/10101');
  });

  it('cuts one direction only', () => {
    const net = network({ nodeCount: 3 });
    net.cutLink({ from: 0, to: 2 });
    expect(reach(net)).toBe('110/111/111');
    net.restoreLink({ from: 0, to: 2 });
    expect(reach(net)).toBe('111/111/111');
  });

  it('isolates a node both ways', () => {
    const net = network({ nodeCount: 3 });
    net.isolate(1);
    expect(reach(net)).toBe('101/010/101');
  });

  it('builds a ring where each node reaches only its neighbours', () => {
    const net = network({ nodeCount: 5 });
    net.ring();
    expect(reach(net)).toBe('11001/11100/01110/00111/10011');
    net.ring({ order: [0, 2, 4, 1, 3] });
    // Neighbours: 0-2, 2-4, 4-1, 1-3, 3-0.
    expect(reach(net)).toBe('10110/01011/10101/11010/01101');
  });

  it('builds a bridge: two halves that reach each other only through the bridge node', () => {
    const net = network({ nodeCount: 5 });
    net.bridge({ bridge: 2 });
    // Halves [0, 1] and [3, 4], both joined to 2.
    expect(reach(net)).toBe('11100/11100/11111/00111/00111');
    net.bridge({ bridge: 0, halves: [[1], [2, 3, 4]] });
    expect(reach(net)).toBe('11111/11000/10111/10111/10111');
  });

  it('composes MIT-style disconnect with the shape', () => {
    const net = network({ nodeCount: 3 });
    net.disconnect(0);
    expect(reach(net)).toBe('100/011/011');
    net.cutLink({ from: 1, to: 2 });
    net.connect(0);
    expect(reach(net)).toBe('111/110/111');
  });

  it('loses in-flight messages when their link goes down before arrival', () => {
    const net = network({ nodeCount: 2 });
    const { deliveries } = net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: 0 });
    expect(deliveries).toHaveLength(1);
    net.partition([[0], [1]]);
    expect(deliveries.every((d) => net.arrive(d))).toBe(false);
    expect(net.stats().droppedByReason.linkDownInFlight).toBe(1);
    expect(net.inFlight({ from: 0, to: 1 })).toBe(0);
  });
});

describe('Network conditions', () => {
  it('drops and duplicates at roughly the configured rates', () => {
    const net = network({
      nodeCount: 2,
      conditions: { dropRate: 0.2, duplicateRate: 0.1, jitterMs: 10, longDelayRate: 0, longDelayMaxMs: 0 },
    });
    const sent = 20_000;
    let originals = 0;
    let copies = 0;
    for (let k = 0; k < sent; k++) {
      const { deliveries } = net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: k });
      if (deliveries.length > 0) originals++;
      copies += deliveries.length;
      for (const d of deliveries) net.arrive(d);
    }
    expect(originals / sent).toBeGreaterThan(0.78);
    expect(originals / sent).toBeLessThan(0.82);
    const dupRate = (copies - originals) / originals;
    expect(dupRate).toBeGreaterThan(0.09);
    expect(dupRate).toBeLessThan(0.11);
    const stats = net.stats();
    expect(stats.messagesSent).toBe(sent);
    expect(stats.droppedByReason.random).toBe(sent - originals);
    expect(stats.messagesDuplicated).toBe(copies - originals);
  });

  it('delays each message by the link latency plus jitter, reordering them', () => {
    const net = network({ nodeCount: 2, conditions: { ...quiet, jitterMs: 20 } });
    const arrivals: Delivery[] = [];
    for (let k = 0; k < 200; k++) {
      arrivals.push(...net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: k }).deliveries);
    }
    const delays = arrivals.map((d, k) => d.atMs - k);
    const base = Math.min(...delays);
    expect(base).toBeGreaterThanOrEqual(1);
    expect(Math.max(...delays) - base).toBeLessThanOrEqual(20);
    const reordered = arrivals.some((d, k) => k > 0 && d.atMs < (arrivals[k - 1]?.atMs ?? 0));
    expect(reordered).toBe(true);
  });

  it('holds back a few messages for a long time under long reordering', () => {
    const net = network({
      nodeCount: 2,
      conditions: { ...quiet, longDelayRate: 0.1, longDelayMaxMs: 1_000 },
    });
    let long = 0;
    for (let k = 0; k < 1_000; k++) {
      const [d] = net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: 0 }).deliveries;
      if (d !== undefined && d.atMs > 100) long++;
    }
    expect(long).toBeGreaterThan(50);
    expect(long).toBeLessThan(110);
  });

  it('drops messages beyond the per-link queue limit', () => {
    const net = network({ nodeCount: 2, linkQueueMessagesMax: 3 });
    const results = Array.from({ length: 5 }, () =>
      net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: 0 }),
    );
    expect(results.map((r) => r.dropped)).toEqual([null, null, null, 'linkQueueFull', 'linkQueueFull']);
    // The other direction has its own queue.
    expect(net.send({ from: 1, to: 0, message: heartbeat(1, 0), nowMs: 0 }).dropped).toBeNull();
    const first = results[0]?.deliveries[0];
    if (first === undefined) throw new Error('expected a delivery');
    net.arrive(first);
    expect(net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: 0 }).dropped).toBeNull();
  });

  it('counts bytes from entry sizes plus a fixed overhead', () => {
    const net = network({ nodeCount: 2 });
    const app: Message = {
      type: 'app',
      from: 'n0',
      to: 'n1',
      term: 1,
      index: 0,
      logTerm: 0,
      commit: 0,
      entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array(100) }],
    };
    net.send({ from: 0, to: 1, message: app, nowMs: 0 });
    net.send({ from: 0, to: 1, message: heartbeat(0, 1), nowMs: 0 });
    expect(messageSizeBytes(app)).toBe(messageOverheadBytes + 100 + 24);
    expect(net.stats().bytesSent).toBe(messageSizeBytes(app) + messageOverheadBytes);
  });

  it('rejects rates outside [0, 1]', () => {
    const net = network({ nodeCount: 2 });
    expect(() => net.setConditions({ ...quiet, dropRate: 1.5 })).toThrow(RangeError);
  });
});
