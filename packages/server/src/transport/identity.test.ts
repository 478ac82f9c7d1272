/**
 * Handshakes that introduce servers to each other: identify dials to a bare address, hellos
 * and welcomes announcing addresses, nodes accepted because they say where they listen, and
 * control frames for the membership layer.
 */
import { createServer, type Socket } from 'node:net';
import type { NodeId } from '@conclave/raft';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  encodeControlFrame,
  encodeFrame,
  encodeHello,
  encodeWelcome,
  FrameDecoder,
  FrameType,
  type Hello,
  parseHello,
  parseWelcome,
  protocolVersion,
  RejectReason,
} from './codec.js';
import { IdentifyError } from './identify.js';
import {
  byClass,
  envelopesFor,
  freePort,
  loopback,
  RawClient,
  startNode,
  type TestNode,
  Waiters,
} from './testing/harness.js';
import type { PeerAddress, PeerIdentity } from './types.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

/** A node that records what handshakes told it and resolves peers from that record. */
async function introducedNode(
  id: NodeId,
  options: { clusterId?: string; http?: PeerAddress } = {},
): Promise<
  TestNode & { learned: Map<NodeId, PeerIdentity>; controls: [NodeId, unknown][]; waiters: Waiters }
> {
  const learned = new Map<NodeId, PeerIdentity>();
  const controls: [NodeId, unknown][] = [];
  const waiters = new Waiters();
  const node = await startNode({
    id,
    ...(options.clusterId === undefined ? {} : { clusterId: options.clusterId }),
    resolvePeer: (peer) => learned.get(peer)?.raft ?? undefined,
    onPeerIdentified: (peer) => {
      learned.set(peer.nodeId, peer);
      waiters.check();
    },
    onControl: (from, value) => {
      controls.push([from, value]);
      waiters.check();
    },
  });
  if (options.http !== undefined) node.transport.setAdvertisedHttp(options.http);
  open.push(node.transport);
  return { ...node, learned, controls, waiters };
}

describe('identify dials to a bare address', () => {
  it("learn the acceptor's id and addresses, and teach it the dialer's", async () => {
    const member = await introducedNode('s1', { http: { host: loopback, port: 8501 } });
    const joiner = await introducedNode('s4', { http: { host: loopback, port: 8504 } });
    const identity = await joiner.transport.identify(member.address);
    const { self, ...learnt } = identity;
    expect(self).toBe(false);
    expect(learnt).toStrictEqual({
      nodeId: 's1',
      raft: member.address,
      http: { host: loopback, port: 8501 },
    });
    expect(joiner.learned.get('s1')).toStrictEqual(learnt);
    await member.waiters.until(() => member.learned.has('s4'), 'the member learns the joiner');
    expect(member.learned.get('s4')).toStrictEqual({
      nodeId: 's4',
      raft: joiner.address,
      http: { host: loopback, port: 8504 },
    });
    expect(joiner.transport.stats()).toMatchObject({ identifies: 1, identifyFailures: 0, dials: 0 });
  });

  it('do not replace the live connection of the same node', async () => {
    const b = await introducedNode('b');
    const a = await introducedNode('a');
    a.transport.addPeer('b', b.address);
    a.transport.send('b', envelopesFor('a', 'b', 5));
    await b.inbox.waitForCount('a', 5);
    await a.transport.identify(b.address);
    const more = envelopesFor('a', 'b', 12).slice(5);
    a.transport.send('b', more);
    await b.inbox.waitForCount('a', 12);
    expect(byClass(b.inbox.from('a').slice(5))).toStrictEqual(byClass(more));
    expect(a.transport.stats().connectionsEstablished).toBe(1);
    expect(b.logs.lines.some((l) => l.msg.includes('opened a newer connection'))).toBe(false);
  });

  it('recognise the dialer itself: a --join list may name every server, this one included', async () => {
    const node = await introducedNode('s1');
    const answer = await node.transport.identify(node.address);
    expect(answer).toMatchObject({ nodeId: 's1', self: true });
    expect(node.transport.stats()).toMatchObject({ identifies: 1, identifyFailures: 0 });
    // Nothing is learned about oneself from one's own answer.
    expect(node.learned.size).toBe(0);
  });

  it.each([
    ['another cluster', 'clusterMismatch'],
    ['another server with its node id', 'duplicateNodeId'],
    ['nothing listening', 'unreachable'],
  ])('fail with a typed reason when the address leads to %s', async (what, reason) => {
    const member = await introducedNode('s1', { clusterId: 'other-cluster' });
    const joiner = await introducedNode('s4');
    const address =
      what === 'another cluster'
        ? member.address
        : what === 'another server with its node id'
          ? (await introducedNode('s4')).address
          : { host: loopback, port: await freePort() };
    const failure = await joiner.transport.identify(address).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(IdentifyError);
    expect((failure as IdentifyError).reason).toBe(reason);
    expect(joiner.transport.stats()).toMatchObject({ identifies: 1, identifyFailures: 1 });
    expect(joiner.learned.size).toBe(0);
  });
});

describe('an identify dial in flight', () => {
  it('ends at once when the transport closes', async () => {
    // Accepts, and never answers.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen({ host: loopback, port: 0 }, resolve));
    open.push({
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          silent.close(() => resolve());
        }),
    });
    const address = silent.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const joiner = await startNode({ id: 's4', limits: { handshakeTimeoutMs: 60_000 } });
    const identifying = joiner.transport.identify({ host: loopback, port: address.port });
    const outcome = identifying.catch((error: unknown) => error);
    await joiner.transport.close();
    const failure = await outcome;
    expect(failure).toBeInstanceOf(IdentifyError);
    expect((failure as IdentifyError).message).toContain('the transport closed');
  });
});

describe('hellos that announce addresses', () => {
  it('let a node nobody configured connect, and be answered at the address it announced', async () => {
    const member = await introducedNode('s1');
    const joiner = await introducedNode('s4');
    joiner.transport.addPeer('s1', member.address);
    joiner.transport.send('s1', envelopesFor('s4', 's1', 3));
    await member.inbox.waitForCount('s4', 3);
    // The member had never heard of s4: the hello told it where s4 listens.
    member.transport.send('s4', envelopesFor('s1', 's4', 4));
    await joiner.inbox.waitForCount('s1', 4);
    expect(member.transport.stats().inboundHandshakesRejected).toBe(0);
    // The welcome told the joiner the member's address too.
    expect(joiner.learned.get('s1')?.raft).toStrictEqual(member.address);
  });

  it('are made dialable: a wildcard host becomes the host the peer was seen at', async () => {
    const member = await introducedNode('s1');
    const client = await RawClient.connect(member.address.port);
    const hello: Hello = {
      version: protocolVersion,
      clusterId: 'test-cluster',
      nodeId: 'w',
      to: 's1',
      raft: { host: '0.0.0.0', port: 7001 },
      http: { host: '::', port: 7002 },
    };
    client.write(encodeHello(hello));
    const welcome = parseWelcome(decodeBody((await client.nextFrame()).body));
    expect(welcome).toStrictEqual({
      version: protocolVersion,
      nodeId: 's1',
      raft: member.address,
      control: true,
      instance: member.transport.instance,
    });
    expect(member.learned.get('w')).toStrictEqual({
      nodeId: 'w',
      raft: { host: loopback, port: 7001 },
      http: { host: loopback, port: 7002 },
    });
  });

  it('that name no address from an unknown node are still refused', async () => {
    const member = await introducedNode('s1');
    const client = await RawClient.connect(member.address.port);
    client.write(encodeHello({ version: protocolVersion, clusterId: 'test-cluster', nodeId: 'x', to: 's1' }));
    const frame = await client.nextFrame();
    expect(frame.type).toBe(FrameType.Reject);
    expect((decodeBody(frame.body) as { reason: string }).reason).toBe(RejectReason.UnknownNode);
    await client.waitClosed();
  });
});

describe('control frames', () => {
  it('carry values to onControl ahead of the Raft messages of the same turn', async () => {
    const b = await introducedNode('b');
    const a = await introducedNode('a');
    a.transport.addPeer('b', b.address);
    let seenMessagesAtControl = -1;
    const controlSeen = b.waiters.until(() => {
      if (b.controls.length === 0) return false;
      seenMessagesAtControl = b.inbox.from('a').length;
      return true;
    }, 'the control value');
    a.transport.send('b', envelopesFor('a', 'b', 3));
    a.transport.sendControl('b', { type: 'ping', id: 7, data: Uint8Array.of(1, 2) });
    await controlSeen;
    await b.inbox.waitForCount('a', 3);
    expect(b.controls).toStrictEqual([['a', { type: 'ping', id: 7, data: Uint8Array.of(1, 2) }]]);
    expect(seenMessagesAtControl).toBe(0);
    expect(a.transport.stats().controlFramesSent).toBe(1);
    expect(b.transport.stats().controlFramesReceived).toBe(1);
  });

  it('are dropped and counted, connection kept, for a peer whose welcome did not offer them', async () => {
    const received: number[] = [];
    const serverSaw = new Waiters();
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      const decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== null; frame = decoder.next()) {
          received.push(frame.type);
          if (frame.type === FrameType.Hello) {
            parseHello(decodeBody(frame.body));
            // An older build: a welcome without `control`.
            socket.write(encodeWelcome({ version: protocolVersion, nodeId: 'old' }));
          }
        }
        serverSaw.check();
      });
    });
    await new Promise<void>((resolve) => server.listen({ host: loopback, port: 0 }, resolve));
    open.push({
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const a = await introducedNode('a');
    a.transport.addPeer('old', { host: loopback, port: address.port });
    a.transport.sendControl('old', { type: 'ping' });
    a.transport.send('old', envelopesFor('a', 'old', 1));
    await a.logs.waitForLine((l) => l.msg.includes('does not take control frames'), 'the warning');
    a.transport.send('old', envelopesFor('a', 'old', 2));
    await serverSaw.until(() => received.filter((t) => t === FrameType.Batch).length >= 2, 'both batches');
    expect(received).not.toContain(FrameType.Control);
    expect(a.transport.stats()).toMatchObject({
      controlFramesDropped: 1,
      controlFramesSent: 0,
      dialFailures: 0,
    });
  });

  it('close the connection when oversized or undecodable, and nothing is delivered', async () => {
    const b = await startNode({ id: 'b', limits: { controlFrameBytesMax: 1024 }, onControl: () => {} });
    open.push(b.transport);
    b.transport.addPeer('c', { host: loopback, port: 1 });
    const handshaken = async () => {
      const client = await RawClient.connect(b.address.port);
      client.write(
        encodeHello({ version: protocolVersion, clusterId: 'test-cluster', nodeId: 'c', to: 'b' }),
      );
      expect((await client.nextFrame()).type).toBe(FrameType.Welcome);
      return client;
    };
    const big = await handshaken();
    big.write(encodeControlFrame({ blob: new Uint8Array(2000) }));
    await big.waitClosed();
    await b.logs.waitForLine((l) => l.msg.includes('control frame of'), 'oversized control');
    const garbled = await handshaken();
    // An array of two holding one item.
    garbled.write(encodeFrame(FrameType.Control, Uint8Array.of(0x92, 0x01)));
    await garbled.waitClosed();
    await b.logs.waitForLine((l) => l.msg.includes('undecodable MessagePack in a control frame'), 'garbled');
    expect(b.transport.stats()).toMatchObject({ controlFramesReceived: 0, protocolErrors: 2 });
  });

  it('to a peer with no known address are dropped and counted', async () => {
    const a = await introducedNode('a');
    a.transport.sendControl('nobody', { type: 'ping' });
    expect(a.transport.stats().controlFramesDropped).toBe(1);
  });
});
