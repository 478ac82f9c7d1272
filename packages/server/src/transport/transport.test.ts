import { createServer, type Socket } from 'node:net';
import type { Message } from '@conclave/raft';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  encodeHello,
  encodeWelcome,
  FrameDecoder,
  FrameType,
  parseHello,
  protocolVersion,
} from './codec.js';
import {
  byClass,
  bytesOf,
  canonical,
  envelopesFor,
  freePort,
  loopback,
  nextTurn,
  startCluster,
  startNode,
  TcpRelay,
  type TestNode,
} from './testing/harness.js';
import type { Envelope } from './types.js';

const open: { close(): Promise<void> }[] = [];
function track<T extends { close(): Promise<void> }>(value: T): T {
  open.push(value);
  return value;
}
async function cluster(ids: string[], options: Parameters<typeof startCluster>[1] = {}): Promise<TestNode[]> {
  const nodes = await startCluster(ids, options);
  for (const node of nodes) track(node.transport);
  return nodes;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function snapshotChunk(from: string, to: string, bytes: number, seed: number): Envelope {
  const message: Message = {
    type: 'snap',
    from,
    to,
    term: 4,
    metadata: { index: 1000, term: 4, confState: { voters: [from, to], learners: [] } },
    offset: seed * bytes,
    data: bytesOf(bytes, seed),
    done: false,
  };
  return { groupId: seed, message };
}

describe('Transport: delivery', () => {
  it('two transports exchange many messages of every type, byte for byte and in order', async () => {
    const [a, b] = await cluster(['a', 'b'], { coalesceHeartbeats: false });
    if (a === undefined || b === undefined) throw new Error('no nodes');
    const aToB = envelopesFor('a', 'b', 3000, 64);
    const bToA = envelopesFor('b', 'a', 3000, 64);
    // Spread over several turns so several frames are involved.
    for (let i = 0; i < aToB.length; i += 500) {
      a.transport.send('b', aToB.slice(i, i + 500));
      b.transport.send('a', bToA.slice(i, i + 500));
      await nextTurn();
    }
    await Promise.all([b.inbox.waitForCount('a', aToB.length), a.inbox.waitForCount('b', bToA.length)]);
    expect(canonical(b.inbox.from('a'))).toStrictEqual(canonical(aToB));
    expect(canonical(a.inbox.from('b'))).toStrictEqual(canonical(bToA));
    expect(a.transport.stats().messagesSent).toBe(3000);
    expect(b.transport.stats().messagesReceived).toBe(3000);
  });

  it('carries large snapshot chunks exactly', async () => {
    const [a, b] = await cluster(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('no nodes');
    const chunks = [1, 2, 3, 4].map((seed) => snapshotChunk('a', 'b', 5 * 1024 * 1024 - 1000 * seed, seed));
    a.transport.send('b', chunks);
    await b.inbox.waitForCount('a', chunks.length);
    expect(canonical(b.inbox.from('a'))).toStrictEqual(canonical(chunks));
    // 20 MiB of chunks cannot share one frame under the default 16 MiB frameBytesMax.
    expect(b.inbox.batchSizes.length).toBeGreaterThan(1);
  });

  it('three transports talk all to all, heartbeats coalesced, nothing lost or altered', async () => {
    const nodes = await cluster(['n1', 'n2', 'n3']);
    const sent = new Map<string, Envelope[]>();
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const envelopes = envelopesFor(from.id, to.id, 2400, 500);
        sent.set(`${from.id}->${to.id}`, envelopes);
        for (let i = 0; i < envelopes.length; i += 800)
          from.transport.send(to.id, envelopes.slice(i, i + 800));
      }
    }
    for (const to of nodes) {
      for (const from of nodes) {
        if (from === to) continue;
        await to.inbox.waitForCount(from.id, 2400);
        const expected = sent.get(`${from.id}->${to.id}`) ?? [];
        // Heartbeats travel in a bundle at the end of their frame: each class keeps its order.
        expect(byClass(to.inbox.from(from.id))).toStrictEqual(byClass(expected));
      }
    }
  });
});

describe('Transport: batching and limits', () => {
  it('sends everything queued in one event-loop turn as one frame', async () => {
    const [a, b] = await cluster(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('no nodes');
    // Warm up so the handshake is out of the way.
    a.transport.send('b', envelopesFor('a', 'b', 1));
    await b.inbox.waitForCount('a', 1);
    const sentBefore = a.transport.stats();
    const receivedBefore = b.transport.stats();
    const batch = envelopesFor('a', 'b', 1001, 50).slice(1);
    for (const envelope of batch) a.transport.send('b', [envelope]); // 1000 separate calls
    await b.inbox.waitForCount('a', 1001);
    expect(a.transport.stats().framesSent - sentBefore.framesSent).toBe(1);
    expect(b.transport.stats().framesReceived - receivedBefore.framesReceived).toBe(1);
    expect(b.inbox.batchSizes.at(-1)).toBe(1000);
  });

  it('splits a turn into several frames to respect frameBytesMax', async () => {
    const frameBytesMax = 64 * 1024;
    const [a, b] = await cluster(['a', 'b'], { limits: { frameBytesMax } });
    if (a === undefined || b === undefined) throw new Error('no nodes');
    const chunks = Array.from({ length: 20 }, (_, i) => snapshotChunk('a', 'b', 20_000, i));
    a.transport.send('b', chunks);
    await b.inbox.waitForCount('a', 20);
    expect(canonical(b.inbox.from('a'))).toStrictEqual(canonical(chunks));
    const frames = a.transport.stats().framesSent - 1; // minus the hello
    expect(frames).toBeGreaterThanOrEqual(Math.ceil((20 * 20_000) / frameBytesMax));
    expect(b.inbox.batchSizes.every((n) => n <= 3)).toBe(true);
  });

  it('drops (and counts) a message too large for any frame', async () => {
    const [a, b] = await cluster(['a', 'b'], { limits: { frameBytesMax: 64 * 1024 } });
    if (a === undefined || b === undefined) throw new Error('no nodes');
    a.transport.send('b', [snapshotChunk('a', 'b', 100_000, 1), snapshotChunk('a', 'b', 1000, 2)]);
    await b.inbox.waitForCount('a', 1);
    expect(b.inbox.from('a')).toStrictEqual([snapshotChunk('a', 'b', 1000, 2)]);
    expect(a.transport.stats().messagesDroppedOversized).toBe(1);
    await a.logs.waitForLine((l) => l.msg.includes('does not fit in one frame'), 'oversized warning');
  });

  it('bounds the send queue while the peer is down, dropping and counting the excess', async () => {
    const port = await freePort();
    const node = await startNode({
      id: 'a',
      peers: new Map([['b', { host: loopback, port }]]),
      limits: { sendQueueMessagesMax: 100, sendQueueBytesMax: 1 << 20 },
    });
    const a = track(node.transport);
    a.send('b', envelopesFor('a', 'b', 250));
    let stats = a.stats();
    expect(stats.messagesDroppedQueueFull).toBe(150);
    expect(stats.peers.get('b')?.queuedMessages).toBe(100);
    // Byte bound: 10 chunks of 300 KB do not fit in 1 MiB.
    a.send(
      'b',
      Array.from({ length: 10 }, (_, i) => snapshotChunk('a', 'b', 300_000, i)),
    );
    stats = a.stats();
    expect(stats.messagesDroppedQueueFull).toBe(160);
    expect(stats.peers.get('b')?.queuedBytes).toBeLessThanOrEqual(1 << 20);
    // The dial fails; what waited for it is discarded, not kept forever.
    await node.logs.waitForLine((l) => l.msg.includes('could not connect to node b'), 'the dial failure');
    expect(a.stats().peers.get('b')?.queuedMessages).toBe(0);
    expect(a.stats().dialFailures).toBeGreaterThanOrEqual(1);
    expect(a.stats().messagesDroppedDisconnected).toBe(100);
  });

  it('stops writing when the socket pushes back and keeps memory bounded', async () => {
    // A peer that completes the handshake and then never reads.
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      const decoder = new FrameDecoder({ frameBytesMax: 4096 });
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        const frame = decoder.next();
        if (frame === null) return;
        expect(frame.type).toBe(FrameType.Hello);
        parseHello(decodeBody(frame.body));
        socket.write(encodeWelcome({ version: protocolVersion, nodeId: 'b' }));
        socket.pause();
        socket.removeAllListeners('data');
      });
    });
    await new Promise<void>((resolve) => server.listen({ host: loopback, port: 0 }, resolve));
    track({
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const sendQueueBytesMax = 8 * 1024 * 1024;
    const frameBytesMax = 2 * 1024 * 1024;
    const a = track(
      (
        await startNode({
          id: 'a',
          peers: new Map([['b', { host: loopback, port: address.port }]]),
          limits: { sendQueueBytesMax, frameBytesMax },
        })
      ).transport,
    );
    let sawBlocked = false;
    for (let i = 0; i < 200; i++) {
      a.send('b', [snapshotChunk('a', 'b', 1024 * 1024, i)]);
      await nextTurn();
      const peer = a.stats().peers.get('b');
      if (peer === undefined) throw new Error('no peer stats');
      sawBlocked ||= peer.blocked;
      expect(peer.queuedBytes).toBeLessThanOrEqual(sendQueueBytesMax);
      // The socket holds at most its high-water mark plus one frame.
      expect(peer.socketBufferedBytes).toBeLessThanOrEqual(frameBytesMax + 64 * 1024);
      if (sawBlocked && a.stats().messagesDroppedQueueFull > 0) break;
    }
    expect(sawBlocked).toBe(true);
    expect(a.stats().messagesDroppedQueueFull).toBeGreaterThan(0);
  });
});

describe('Transport: reconnecting', () => {
  it('reconnects after the peer restarts on the same port', async () => {
    const [a, b] = await cluster(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('no nodes');
    a.transport.send('b', envelopesFor('a', 'b', 10));
    await b.inbox.waitForCount('a', 10);
    await b.transport.close();
    await a.logs.waitForLine((l) => l.msg.includes('lost its connection to node b'), 'a notices b is gone');
    // While b is down, sends fail and back off.
    a.transport.send('b', envelopesFor('a', 'b', 5));
    await a.logs.waitForLine((l) => l.msg.includes('could not connect to node b'), 'a dial failure');
    const b2 = await startNode({ id: 'b', port: b.address.port, peers: new Map([['a', a.address]]) });
    track(b2.transport);
    const fresh = envelopesFor('a', 'b', 20).slice(10);
    a.transport.send('b', fresh);
    await b2.inbox.waitForCount('a', fresh.length);
    expect(byClass(b2.inbox.from('a'))).toStrictEqual(byClass(fresh));
    expect(a.transport.stats().reconnects).toBe(1);
    expect(a.transport.stats().peers.get('b')?.reconnects).toBe(1);
  });

  it('recovers from a connection cut mid-stream, mid-frame', async () => {
    // Two 100 KB chunks per frame, so the cut lands inside a frame after whole ones.
    const [a, b] = await cluster(['a', 'b'], { limits: { frameBytesMax: 256 * 1024 } });
    if (a === undefined || b === undefined) throw new Error('no nodes');
    const relay = track(new TcpRelay(b.address));
    a.transport.addPeer('b', await relay.start());
    let forwarded = 0;
    relay.onForward = (chunk, r) => {
      forwarded += chunk.byteLength;
      // Cut once, somewhere inside the big frame.
      if (forwarded > 300_000 && r.connections === 1) r.cutAll();
    };
    const first = Array.from({ length: 8 }, (_, i) => snapshotChunk('a', 'b', 100_000, i));
    a.transport.send('b', first);
    await a.logs.waitForLine((l) => l.msg.includes('lost its connection to node b'), 'the cut, at a');
    await b.logs.waitForLine((l) => l.msg.includes('inbound connection from node a at'), 'the cut, at b');
    // Whatever b got of the first batch is an exact prefix, never a corrupt message.
    const partial = [...b.inbox.from('a')];
    expect(canonical(partial)).toStrictEqual(canonical(first.slice(0, partial.length)));
    const second = Array.from({ length: 5 }, (_, i) => snapshotChunk('a', 'b', 1000, 100 + i));
    a.transport.send('b', second);
    await b.inbox.waitForCount('a', partial.length + second.length);
    expect(canonical(b.inbox.from('a').slice(partial.length))).toStrictEqual(canonical(second));
    expect(relay.connections).toBe(2);
    expect(b.transport.stats().protocolErrors).toBe(0);
  });

  it('dials lazily: no connection until there is something to send', async () => {
    const [a, b] = await cluster(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('no nodes');
    await nextTurn();
    expect(a.transport.stats().dials).toBe(0);
    expect(b.transport.stats().inboundConnections).toBe(0);
    a.transport.send('b', envelopesFor('a', 'b', 1));
    await b.inbox.waitForCount('a', 1);
    expect(a.transport.stats().dials).toBe(1);
    // One-way traffic opened one connection; b still has no outbound one.
    expect(b.transport.stats().dials).toBe(0);
  });

  it('counts sends to unknown peers and refuses to send to itself', async () => {
    const [a] = await cluster(['a']);
    if (a === undefined) throw new Error('no nodes');
    a.transport.send('nobody', envelopesFor('a', 'nobody', 3));
    expect(a.transport.stats().messagesDroppedUnknownPeer).toBe(3);
    expect(() => a.transport.send('a', envelopesFor('a', 'a', 1))).toThrow(/itself/);
  });
});

describe('Transport: hello frames from a real dialer', () => {
  it('sends a well-formed hello naming both sides', async () => {
    const port = await freePort();
    const server = createServer();
    const hello = new Promise<ReturnType<typeof parseHello>>((resolve) => {
      server.on('connection', (socket) => {
        const decoder = new FrameDecoder({ frameBytesMax: 4096 });
        socket.on('data', (chunk: Buffer) => {
          decoder.push(chunk);
          const frame = decoder.next();
          if (frame !== null) {
            resolve(parseHello(decodeBody(frame.body)));
            socket.destroy();
          }
        });
      });
    });
    await new Promise<void>((resolve) => server.listen({ host: loopback, port }, resolve));
    track({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const node = await startNode({ id: 'a', peers: new Map([['b', { host: loopback, port }]]) });
    const a = track(node.transport);
    a.setAdvertisedHttp({ host: loopback, port: 8500 });
    a.send('b', envelopesFor('a', 'b', 1));
    // It also says where it listens, so that a server it is new to can answer it.
    expect(await hello).toStrictEqual({
      version: protocolVersion,
      clusterId: 'test-cluster',
      nodeId: 'a',
      to: 'b',
      raft: node.address,
      http: { host: loopback, port: 8500 },
    });
    expect(encodeHello(await hello).byteLength).toBeLessThan(120);
  });
});
