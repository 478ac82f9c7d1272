import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  encodeBatchFrame,
  encodeEnvelope,
  encodeFrame,
  encodeHello,
  encodeValue,
  FrameType,
  type Hello,
  parseReject,
  protocolVersion,
  RejectReason,
} from './codec.js';
import {
  byClass,
  canonical,
  envelopesFor,
  type LogLine,
  RawClient,
  startCluster,
  startNode,
  type TestNode,
} from './testing/harness.js';

/**
 * Each test attacks node b while a and b already talk: the offending connection is
 * closed and logged, b keeps serving a on the same connection, and nothing crashes.
 */

let a: TestNode;
let b: TestNode;
const extra: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  const nodes = await startCluster(['a', 'b'], { limits: { frameBytesMax: 1024 * 1024 } });
  const [first, second] = nodes;
  if (first === undefined || second === undefined) throw new Error('no nodes');
  a = first;
  b = second;
  // 'c' is a known peer of b that the raw client impersonates.
  b.transport.addPeer('c', { host: '127.0.0.1', port: 1 });
  a.transport.send('b', envelopesFor('a', 'b', 10));
  await b.inbox.waitForCount('a', 10);
});

afterEach(async () => {
  await Promise.all([a.transport.close(), b.transport.close(), ...extra.splice(0).map((c) => c.close())]);
});

/** b still serves a, on the connection it had before the fault. */
async function bStillServesA(): Promise<void> {
  const before = b.inbox.from('a').length;
  const more = envelopesFor('a', 'b', 30).slice(10);
  a.transport.send('b', more);
  await b.inbox.waitForCount('a', before + more.length);
  expect(byClass(b.inbox.from('a').slice(before))).toStrictEqual(byClass(more));
  expect(a.transport.stats().connectionsEstablished).toBe(1);
  expect(a.transport.stats().dialFailures).toBe(0);
}

function hello(patch: Partial<Hello> = {}): Buffer {
  return encodeHello({ version: protocolVersion, clusterId: 'test-cluster', nodeId: 'c', to: 'b', ...patch });
}

async function handshaken(): Promise<RawClient> {
  const client = await RawClient.connect(b.address.port);
  client.write(hello());
  const welcome = await client.nextFrame();
  expect(welcome.type).toBe(FrameType.Welcome);
  return client;
}

function warnedAbout(text: string): (line: LogLine) => boolean {
  return (line) => line.level === 40 && line.msg.includes(text);
}

describe('before the handshake', () => {
  it('closes a connection sending garbage bytes', async () => {
    const client = await RawClient.connect(b.address.port);
    client.write(Buffer.from('GET / HTTP/1.1\r\nHost: conclave\r\n\r\n'));
    await client.waitClosed();
    const line = await b.logs.waitForLine(warnedAbout('exceeds the limit of 4096 bytes'), 'garbage rejected');
    expect(line.msg).toMatch(
      /^node b closed the inbound connection from an unidentified peer at 127\.0\.0\.1:\d+/,
    );
    expect(b.transport.stats().protocolErrors).toBe(1);
    await bStillServesA();
  });

  it('closes a connection announcing an oversized frame', async () => {
    const client = await RawClient.connect(b.address.port);
    client.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await client.waitClosed();
    await b.logs.waitForLine(warnedAbout('frame of 4294967299 bytes exceeds'), 'oversized prefix');
    await bStillServesA();
  });

  it('closes a connection whose first frame is not a hello, or is empty', async () => {
    const notHello = await RawClient.connect(b.address.port);
    notHello.write(encodeFrame(FrameType.Batch, encodeValue({ heartbeats: null, envelopes: [] })));
    await notHello.waitClosed();
    await b.logs.waitForLine(warnedAbout('expected a hello frame, got frame type 4'), 'not a hello');
    const empty = await RawClient.connect(b.address.port);
    empty.write(Buffer.alloc(4));
    await empty.waitClosed();
    await b.logs.waitForLine(warnedAbout('frame length is 0'), 'empty frame');
    await bStillServesA();
  });

  it.each([
    {
      what: 'a wrong cluster id',
      patch: { clusterId: 'other-cluster' },
      reason: RejectReason.ClusterMismatch,
      detail: 'node c is in cluster "other-cluster"; node b is in cluster "test-cluster"',
    },
    {
      what: 'an unsupported protocol version',
      patch: { version: 99 },
      reason: RejectReason.VersionUnsupported,
      detail: 'node c speaks protocol version 99; node b supports 1',
    },
    {
      what: 'an unknown node id',
      patch: { nodeId: 'stranger' },
      reason: RejectReason.UnknownNode,
      detail: 'node stranger is not a known peer of node b',
    },
    {
      what: "the acceptor's own node id",
      patch: { nodeId: 'b' },
      reason: RejectReason.DuplicateNodeId,
      detail: 'node b claims the node id of node b itself',
    },
    {
      what: 'a hello meant for another node',
      patch: { to: 'z' },
      reason: RejectReason.WrongNode,
      detail: 'node c meant to reach node z, but reached node b',
    },
  ])(
    'rejects $what with a typed answer and a log line naming both sides',
    async ({ patch, reason, detail }) => {
      const client = await RawClient.connect(b.address.port);
      client.write(hello(patch));
      const frame = await client.nextFrame();
      expect(frame.type).toBe(FrameType.Reject);
      const reject = parseReject(decodeBody(frame.body));
      expect(reject.reason).toBe(reason);
      expect(reject.nodeId).toBe('b');
      expect(reject.supportedVersions).toEqual([protocolVersion]);
      expect(reject.detail).toContain(detail);
      await client.waitClosed();
      const line = await b.logs.waitForLine(warnedAbout(`(${reason})`), 'the rejection');
      expect(line.msg).toContain('node b rejected the handshake of node');
      expect(line.msg).toContain(detail);
      expect(line.reason).toBe(reason);
      expect(b.transport.stats().inboundHandshakesRejected).toBe(1);
      await bStillServesA();
    },
  );

  it('rejects a malformed hello', async () => {
    const client = await RawClient.connect(b.address.port);
    client.write(encodeFrame(FrameType.Hello, encodeValue('hello?')));
    const reject = parseReject(decodeBody((await client.nextFrame()).body));
    expect(reject.reason).toBe(RejectReason.Malformed);
    await client.waitClosed();
    await bStillServesA();
  });

  it('closes a connection that never says hello', async () => {
    const slow = await startNode({ id: 's', limits: { handshakeTimeoutMs: 200 } });
    extra.push(slow.transport);
    const client = await RawClient.connect(slow.address.port);
    await client.waitClosed();
    await slow.logs.waitForLine(warnedAbout('no hello within 200 ms'), 'handshake timeout');
  });

  it('a real transport of another cluster is refused, and says so in its own log', async () => {
    const stranger = await startNode({
      id: 'c',
      clusterId: 'other-cluster',
      peers: new Map([['b', b.address]]),
    });
    extra.push(stranger.transport);
    stranger.transport.send('b', envelopesFor('c', 'b', 3));
    const line = await stranger.logs.waitForLine(
      (l) => l.level === 50 && l.msg.includes('rejected the handshake'),
      'the dialer logs the rejection',
    );
    expect(line.msg).toContain('node b at 127.0.0.1:');
    expect(line.msg).toContain('rejected the handshake of node c (clusterMismatch)');
    expect(stranger.transport.stats().outboundHandshakesRejected).toBe(1);
    await stranger.logs.waitForLine((l) => l.msg.includes('could not connect to node b'), 'the failed dial');
    expect(stranger.transport.stats().messagesDroppedDisconnected).toBe(3);
    expect(b.inbox.from('c')).toEqual([]);
    await bStillServesA();
  });
});

describe('after the handshake', () => {
  it('closes a connection announcing a frame over frameBytesMax', async () => {
    const client = await handshaken();
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1024 * 1024, 0); // + 4 bytes of prefix > 1 MiB
    client.write(header);
    await client.waitClosed();
    const line = await b.logs.waitForLine(
      warnedAbout('exceeds the limit of 1048576 bytes'),
      'oversized frame',
    );
    expect(line.msg).toContain('from node c at 127.0.0.1:');
    await bStillServesA();
  });

  it('closes a connection sending undecodable MessagePack', async () => {
    const client = await handshaken();
    client.write(encodeFrame(FrameType.Batch, Uint8Array.of(0x82, 0xa1, 0x61, 0xdd, 0xff)));
    await client.waitClosed();
    await b.logs.waitForLine(warnedAbout('undecodable MessagePack'), 'undecodable');
    await bStillServesA();
  });

  it.each([
    ['a negative group id', { groupId: -1, message: { type: 'timeoutNow', from: 'c', to: 'b', term: 1 } }],
    ['an unknown message type', { groupId: 1, message: { type: 'gossip', from: 'c', to: 'b', term: 1 } }],
    [
      'binary where entries belong',
      {
        groupId: 1,
        message: {
          type: 'app',
          from: 'c',
          to: 'b',
          term: 1,
          index: 0,
          logTerm: 0,
          commit: 0,
          entries: new Uint8Array(3),
        },
      },
    ],
  ])('closes a connection sending an envelope with %s', async (_what, bad) => {
    const client = await handshaken();
    const good = envelopesFor('c', 'b', 2).map(encodeEnvelope);
    client.write(encodeBatchFrame(null, [...good, encodeValue(bad)]));
    await client.waitClosed();
    await b.logs.waitForLine(warnedAbout('malformed batch: batch.envelopes[2]'), 'bad shape');
    // Nothing of a bad frame is delivered, not even its good envelopes.
    expect(b.inbox.from('c')).toEqual([]);
    await bStillServesA();
  });

  it('closes a connection carrying messages addressed from or to someone else', async () => {
    const client = await handshaken();
    client.write(encodeBatchFrame(null, envelopesFor('a', 'b', 1).map(encodeEnvelope)));
    await client.waitClosed();
    await b.logs.waitForLine(warnedAbout('misaddressed app message from a to b'), 'spoofed sender');
    expect(b.inbox.from('c')).toEqual([]);
    await bStillServesA();
  });

  it('closes a connection sending a frame type other than batch', async () => {
    const client = await handshaken();
    client.write(hello());
    await client.waitClosed();
    await b.logs.waitForLine(warnedAbout('expected a batch frame, got frame type 1'), 'second hello');
    await bStillServesA();
  });

  it('delivers good frames from a raw client, then survives it vanishing mid-frame', async () => {
    const client = await handshaken();
    const sent = envelopesFor('c', 'b', 24);
    client.write(encodeBatchFrame(null, sent.map(encodeEnvelope)));
    await b.inbox.waitForCount('c', 24);
    expect(canonical(b.inbox.from('c'))).toStrictEqual(canonical(sent));
    const frame = encodeBatchFrame(null, sent.map(encodeEnvelope));
    client.write(frame.subarray(0, frame.byteLength >> 1));
    client.socket.destroy();
    await client.waitClosed();
    await bStillServesA();
    expect(b.inbox.from('c')).toHaveLength(24);
    expect(b.transport.stats().protocolErrors).toBe(0);
  });

  it('a newer connection from the same node replaces the older one', async () => {
    const first = await handshaken();
    const second = await handshaken();
    await first.waitClosed();
    await b.logs.waitForLine((l) => l.msg.includes('node c opened a newer connection'), 'replacement');
    second.write(encodeBatchFrame(null, envelopesFor('c', 'b', 1).map(encodeEnvelope)));
    await b.inbox.waitForCount('c', 1);
  });

  it('logs an onMessages that throws and keeps the connection', async () => {
    b.inbox.failNext = new Error('host bug');
    a.transport.send('b', envelopesFor('a', 'b', 1));
    const line = await b.logs.waitForLine(
      (l) => l.level === 50 && l.msg.includes('onMessages threw'),
      'host error',
    );
    expect(line.msg).toContain('host bug');
    await bStillServesA();
  });
});
