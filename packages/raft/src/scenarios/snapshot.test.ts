/** Snapshots: chunked InstallSnapshot, lost chunks, restarts after compaction. */
import { describe, expect, it } from 'vitest';
import { RaftError, RaftErrorCode } from '../errors.js';
import { decodeState, TestNetwork } from '../testing/network.js';
import { ConfChangeType, type Message, type SnapshotMessage } from '../types.js';

const three = ['a', 'b', 'c'];
const snapsTo = (messages: readonly Message[], id: string): SnapshotMessage[] =>
  messages.filter((m): m is SnapshotMessage => m.type === 'snap' && m.to === id);

/** a leads; c misses 30 commands, which a and b then compact away. */
function behindCompacted(messageBytesMax: number) {
  const net = new TestNetwork({ voters: three, node: { messageBytesMax } });
  net.elect('a');
  net.propose('a', 'first');
  net.isolate('c');
  for (let i = 0; i < 30; i++) net.propose('a', `cmd-${i}`);
  const snapshot = net.compact('a', { trailingEntries: 0 });
  net.compact('b', { trailingEntries: 0 });
  expect(net.node('a').storage.firstIndex()).toBe(snapshot.metadata.index + 1);
  return { net, snapshot };
}

describe('InstallSnapshot', () => {
  it('brings a follower far behind up to date with a snapshot sent in several chunks', () => {
    const { net, snapshot } = behindCompacted(64);
    const size = snapshot.data.byteLength;
    expect(size).toBeGreaterThan(4 * 64);
    const from = net.sent.length;
    net.heal();
    net.tickAll(3);
    const chunks = snapsTo(net.sent.slice(from), 'c');
    expect(chunks.length).toBe(Math.ceil(size / 64));
    // stop and wait: offsets advance by one chunk, each at most messageBytesMax
    chunks.forEach((chunk, i) => {
      expect(chunk.offset).toBe(i * 64);
      expect(chunk.data.byteLength).toBeLessThanOrEqual(64);
      expect(chunk.done).toBe(i === chunks.length - 1);
    });
    expect(net.node('c').snapshotsRestored.map((s) => s.metadata.index)).toEqual([snapshot.metadata.index]);
    expect(net.commands('c')).toEqual(net.commands('a'));
    expect(net.node('c').storage.snapshot().metadata).toEqual(snapshot.metadata);
    // and it follows the log from there
    net.propose('a', 'after');
    expect(net.commands('c')).toEqual(net.commands('a'));
    expect(net.commands('c')).toHaveLength(32);
  });

  it('resends a chunk lost mid-transfer', () => {
    const { net, snapshot } = behindCompacted(64);
    let snapsSeen = 0;
    let lostOffset = -1;
    net.filter = (m) => {
      if (m.type !== 'snap' || m.to !== 'c') return true;
      snapsSeen++;
      if (snapsSeen === 3) {
        lostOffset = m.offset;
        return false;
      }
      return true;
    };
    const from = net.sent.length;
    net.heal();
    net.tickAll(10);
    expect(lostOffset).toBe(128);
    const offsets = snapsTo(net.sent.slice(from), 'c').map((m) => m.offset);
    expect(offsets.filter((o) => o === lostOffset).length).toBeGreaterThanOrEqual(2);
    expect(net.node('c').storage.snapshot().metadata).toEqual(snapshot.metadata);
    expect(net.commands('c')).toEqual(net.commands('a'));
  });

  it('restarts the transfer when a chunk does not continue what the follower holds', () => {
    const { net } = behindCompacted(64);
    // c restarts mid-transfer: it lost its assembly, and rejects the next chunk
    let restarted = false;
    net.filter = (m) => {
      if (m.type === 'snap' && m.to === 'c' && m.offset === 192 && !restarted) {
        restarted = true;
        net.restart('c');
      }
      return true;
    };
    net.heal();
    net.tickAll(10);
    expect(restarted).toBe(true);
    const rejects = net.delivered.filter((m) => m.type === 'appResp' && m.from === 'c' && m.reject);
    expect(rejects.length).toBeGreaterThanOrEqual(1);
    expect(net.commands('c')).toEqual(net.commands('a'));
  });

  it('offers a fresh snapshot when it compacted past the one the follower just installed (regression: sim seed 61)', () => {
    const { net, snapshot } = behindCompacted(1 << 20);
    // c installs the snapshot, but its acknowledgement is held back ...
    net.hold = (m) =>
      m.type === 'appResp' && m.from === 'c' && !m.reject && m.index >= snapshot.metadata.index;
    net.heal();
    net.tickAll(3);
    expect(net.node('c').storage.snapshot().metadata.index).toBe(snapshot.metadata.index);
    // ... while a moves on and compacts past that snapshot.
    net.hold = (m) => m.from === 'c' || m.to === 'c';
    for (let i = 0; i < 10; i++) net.propose('a', `later-${i}`);
    const second = net.compact('a', { trailingEntries: 0 });
    expect(second.metadata.index).toBeGreaterThan(snapshot.metadata.index);
    net.hold = null;
    net.release();
    net.tickAll(4);
    expect(net.node('c').snapshotsRestored.map((s) => s.metadata.index)).toEqual([
      snapshot.metadata.index,
      second.metadata.index,
    ]);
    expect(net.commands('c')).toEqual(net.commands('a'));
    const status = net.raw('a').status().progress?.get('c');
    expect(status?.state).toBe('replicate');
  });

  it('a blank node added to a compacted group receives the snapshot and its membership', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    for (let i = 0; i < 5; i++) net.propose('a', `cmd-${i}`);
    net.compact('a', { trailingEntries: 0 });
    net.addBlankNode('d');
    expect(net.raw('a').proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'd' }).ok).toBe(true);
    net.settle();
    net.tickAll(2);
    expect(net.raw('d').status().confState).toEqual({ voters: three, learners: ['d'] });
    expect(net.commands('d')).toEqual(net.commands('a'));
  });

  it('every node restarts from a compacted storage and recovers', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    for (let i = 0; i < 10; i++) net.propose('a', `cmd-${i}`);
    for (const id of three) net.compact(id, { trailingEntries: 2 });
    for (let i = 10; i < 13; i++) net.propose('a', `cmd-${i}`);
    const expected = net.commands('a');
    net.restartAll();
    for (const id of three) {
      // right after the restart, the state machine holds what the snapshot held
      expect(net.commands(id)).toEqual(decodeState(net.node(id).storage.snapshot().data));
    }
    net.tickUntil(() => net.leaders().length === 1, 100);
    const leader = net.leaders()[0] ?? '';
    for (const id of three) expect(net.commands(id)).toEqual(expected);
    net.propose(leader, 'after');
    for (const id of three) expect(net.commands(id)).toEqual([...expected, 'after']);
  });

  it('a follower acknowledges, without installing, a snapshot it already covers', () => {
    const { net, snapshot } = behindCompacted(1024 * 1024);
    net.heal();
    net.tickAll(2);
    const restored = net.node('c').snapshotsRestored.length;
    // a duplicate of the whole snapshot arrives late
    net.raw('c').step({
      type: 'snap',
      from: 'a',
      to: 'c',
      term: 1,
      metadata: snapshot.metadata,
      offset: 0,
      data: snapshot.data,
      done: true,
    });
    net.settle();
    expect(net.node('c').snapshotsRestored.length).toBe(restored);
    expect(net.commands('c')).toEqual(net.commands('a'));
  });

  it('refuses a snapshot larger than snapshotBytesMax; the leader retries at the heartbeat pace', () => {
    const net = new TestNetwork({
      voters: three,
      node: { messageBytesMax: 64 },
      nodes: { c: { snapshotBytesMax: 100 } },
    });
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 30; i++) net.propose('a', `cmd-${i}`);
    net.compact('a', { trailingEntries: 0 });
    const from = net.delivered.length;
    net.heal();
    net.tickAll(5);
    const rejects = net.delivered
      .slice(from)
      .filter((m) => m.type === 'appResp' && m.from === 'c' && m.reject);
    expect(rejects.length).toBeGreaterThanOrEqual(1);
    expect(rejects.length).toBeLessThanOrEqual(6);
    expect(net.node('c').snapshotsRestored).toEqual([]);
    expect(net.commands('c')).toEqual([]);
  });

  it('createSnapshot refuses an index beyond applied or below the current snapshot (SNAPSHOT_OUT_OF_DATE)', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x');
    const applied = net.raw('a').status().applied;
    const beyond = () => net.raw('a').createSnapshot({ index: applied + 1, data: new Uint8Array(0) });
    expect(beyond).toThrow(RaftError);
    try {
      beyond();
    } catch (error) {
      expect(error instanceof RaftError && error.code).toBe(RaftErrorCode.SnapshotOutOfDate);
    }
    net.compact('a', { trailingEntries: 0 });
    expect(() => net.raw('a').createSnapshot({ index: 1, data: new Uint8Array(0) })).toThrow(RaftError);
  });
});
