/** Linearizable reads: ReadIndex rounds and leader leases. */
import { describe, expect, it } from 'vitest';
import { RaftErrorCode } from '../errors.js';
import { TestNetwork } from '../testing/network.js';
import type { Message } from '../types.js';

const three = ['a', 'b', 'c'];
const ctx = (n: number) => new Uint8Array([n]);
const contexts = (net: TestNetwork, id: string) => net.node(id).readStates.map((r) => r.context[0]);
const heartbeatsFrom = (messages: readonly Message[], id: string) =>
  messages.filter((m) => m.type === 'heartbeat' && m.from === id).length;

describe('ReadIndex', () => {
  it('resolves only once a quorum has acknowledged a heartbeat round started after the read', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x');
    net.hold = (m) => m.type === 'heartbeat';
    expect(net.raw('a').readIndex({ context: ctx(1), mode: 'quorum' }).ok).toBe(true);
    net.settle();
    expect(net.node('a').readStates).toEqual([]);
    // one follower's acknowledgement makes a quorum with the leader
    net.hold = null;
    net.release((m) => m.to === 'b');
    expect(net.node('a').readStates).toEqual([{ index: 2, context: ctx(1) }]);
  });

  it('batches: many reads registered between two Readys share one heartbeat round', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.tickAll(1);
    const from = net.sent.length;
    for (let i = 0; i < 10; i++)
      expect(net.raw('a').readIndex({ context: ctx(i), mode: 'quorum' }).ok).toBe(true);
    net.settle();
    // one round: one heartbeat to each follower
    expect(heartbeatsFrom(net.sent.slice(from), 'a')).toBe(2);
    expect(contexts(net, 'a')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a follower refuses with NOT_LEADER and names the leader it knows', () => {
    const net = new TestNetwork({ voters: three });
    const unknown = net.raw('b').readIndex({ context: ctx(1), mode: 'quorum' });
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.error).toMatchObject({ code: RaftErrorCode.NotLeader, leaderId: null });
    net.elect('a');
    const known = net.raw('b').readIndex({ context: ctx(1), mode: 'lease' });
    expect(known.ok).toBe(false);
    if (!known.ok) expect(known.error).toMatchObject({ code: RaftErrorCode.NotLeader, leaderId: 'a' });
  });

  it('a new leader answers reads only once it has committed an entry of its term', () => {
    const net = new TestNetwork({ voters: three });
    net.hold = (m) => m.type === 'app';
    net.elect('a');
    expect(net.raw('a').status().commit).toBe(0);
    expect(net.raw('a').readIndex({ context: ctx(7), mode: 'quorum' }).ok).toBe(true);
    net.tickAll(2);
    // rounds were confirmed, but the no-op is not committed: the read waits
    expect(net.node('a').readStates).toEqual([]);
    net.hold = null;
    net.release();
    expect(net.node('a').readStates).toEqual([{ index: 1, context: ctx(7) }]);
  });

  it('a deposed leader drops its waiting reads with NOT_LEADER and never answers them', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.isolate('a');
    expect(net.raw('a').readIndex({ context: ctx(3), mode: 'quorum' }).ok).toBe(true);
    net.settle();
    // b and c elect a new leader while a hears nothing
    for (let i = 0; i < 40 && net.leaders().length < 2; i++) {
      net.raw('b').tick();
      net.raw('c').tick();
      net.settle();
    }
    expect(net.raw('a').status().role).toBe('leader');
    expect(net.node('a').droppedReadContexts).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect(net.raw('a').status().role).toBe('follower');
    expect(net.node('a').droppedReadContexts).toEqual([ctx(3)]);
    expect(net.node('a').droppedReadErrors.map((e) => e.code)).toEqual([RaftErrorCode.NotLeader]);
    expect(net.node('a').readStates).toEqual([]);
  });

  it('refuses reads beyond readIndexPendingMax (READ_INDEX_QUEUE_FULL)', () => {
    const net = new TestNetwork({ voters: three, node: { readIndexPendingMax: 2 } });
    net.elect('a');
    net.isolate('a');
    expect(net.raw('a').readIndex({ context: ctx(1), mode: 'quorum' }).ok).toBe(true);
    expect(net.raw('a').readIndex({ context: ctx(2), mode: 'quorum' }).ok).toBe(true);
    const full = net.raw('a').readIndex({ context: ctx(3), mode: 'quorum' });
    expect(full.ok).toBe(false);
    if (!full.ok) expect(full.error.code).toBe(RaftErrorCode.ReadIndexQueueFull);
  });
});

describe('lease reads', () => {
  it('are served at once, without a heartbeat round, while the lease holds', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x');
    net.tickAll(1);
    const from = net.sent.length;
    expect(net.raw('a').readIndex({ context: ctx(1), mode: 'lease' }).ok).toBe(true);
    net.settle();
    expect(net.node('a').readStates).toEqual([{ index: 2, context: ctx(1) }]);
    expect(heartbeatsFrom(net.sent.slice(from), 'a')).toBe(0);
  });

  it('fall back to a quorum round once the lease has expired, and it expires before anyone else can lead', () => {
    const electionTimeoutTicks = 10;
    const leaseClockDriftTicks = 2;
    const net = new TestNetwork({ voters: three, node: { electionTimeoutTicks, leaseClockDriftTicks } });
    net.elect('a');
    net.tickAll(3);
    net.partition([['a'], ['b', 'c']]);
    // From now on a cannot complete a round: every read it serves is served on its lease.
    let served = 0;
    let lastServedTick = -1;
    let newLeaderTick = -1;
    for (let tick = 1; tick <= 40 && newLeaderTick < 0; tick++) {
      net.tickAll(1);
      if (net.raw('a').status().role === 'leader') {
        net.raw('a').readIndex({ context: ctx(tick), mode: 'lease' });
        net.settle();
      }
      if (net.node('a').readStates.length > served) {
        served = net.node('a').readStates.length;
        lastServedTick = tick;
      }
      if (net.leaders().some((id) => id !== 'a')) newLeaderTick = tick;
    }
    // The last round a quorum confirmed started one tick before the partition: the lease
    // lasts electionTimeoutTicks - 1 - leaseClockDriftTicks ticks from that round's start.
    expect(lastServedTick).toBe(electionTimeoutTicks - 2 - leaseClockDriftTicks);
    expect(served).toBe(lastServedTick);
    expect(newLeaderTick).toBeGreaterThan(lastServedTick);
  });

  it('are not served on the lease while a leadership transfer is in progress', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.tickAll(1);
    net.isolate('c');
    expect(net.raw('a').transferLeader('c').ok).toBe(true);
    net.hold = (m) => m.type === 'heartbeat';
    expect(net.raw('a').readIndex({ context: ctx(1), mode: 'lease' }).ok).toBe(true);
    net.settle();
    expect(net.node('a').readStates).toEqual([]);
    // it waits for a quorum round instead
    net.hold = null;
    net.release();
    expect(net.node('a').readStates.map((r) => r.context[0])).toEqual([1]);
  });
});
