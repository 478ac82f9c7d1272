import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { Message, NodeId } from '@conclave/raft';
import { type Logger, pino } from 'pino';
import { FrameDecoder, type RawFrame } from '../codec.js';
import type { TransportLimits } from '../limits.js';
import { Transport, type TransportOptions } from '../transport.js';
import type { Envelope, PeerAddress } from '../types.js';

/** Tests talk over loopback only. */
export const loopback = '127.0.0.1';

export const testLimits: Partial<TransportLimits> = {
  reconnectDelayMinMs: 5,
  reconnectDelayMaxMs: 40,
  handshakeTimeoutMs: 2000,
};

/** Every wait in these tests is bounded by this (or less); none sleeps a fixed time. */
export const waitMs = 10_000;

/** Conditions re-checked whenever something they depend on changes; no polling, no sleeps. */
export class Waiters {
  private readonly pending = new Set<() => boolean>();

  /** Resolve once `predicate` holds (checked now and at every {@link check}), or reject after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs = waitMs): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(entry);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const entry = (): boolean => {
        if (!predicate()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      this.pending.add(entry);
    });
  }

  check(): void {
    for (const entry of [...this.pending]) if (entry()) this.pending.delete(entry);
  }
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A pino logger writing JSON lines into memory, and a way to wait for one. */
export function captureLogs(): {
  logger: Logger;
  lines: LogLine[];
  waitForLine(predicate: (line: LogLine) => boolean, what: string): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const waiters = new Waiters();
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      }
      waiters.check();
      callback();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return {
    logger,
    lines,
    async waitForLine(predicate, what) {
      let found: LogLine | undefined;
      await waiters.until(() => {
        found = lines.find(predicate);
        return found !== undefined;
      }, `log line: ${what}`);
      if (found === undefined) throw new Error('unreachable');
      return found;
    },
  };
}

/** Collects what a transport delivers, per sender, and lets a test wait for it. */
export class Inbox {
  readonly bySender = new Map<NodeId, Envelope[]>();
  /** Sizes of the batches handed to onMessages, one per received frame. */
  readonly batchSizes: number[] = [];
  /** Thrown (once) by the next delivery after recording it, to play a buggy host. */
  failNext: Error | null = null;
  private readonly waiters = new Waiters();

  readonly onMessages = (from: NodeId, envelopes: readonly Envelope[]): void => {
    const list = this.bySender.get(from) ?? [];
    list.push(...envelopes);
    this.bySender.set(from, list);
    this.batchSizes.push(envelopes.length);
    this.waiters.check();
    const failure = this.failNext;
    this.failNext = null;
    if (failure !== null) throw failure;
  };

  from(sender: NodeId): Envelope[] {
    return this.bySender.get(sender) ?? [];
  }

  waitForCount(sender: NodeId, count: number): Promise<void> {
    return this.waiters.until(() => this.from(sender).length >= count, `${count} messages from ${sender}`);
  }

  waitFor(predicate: () => boolean, what: string): Promise<void> {
    return this.waiters.until(predicate, what);
  }
}

export interface TestNode {
  readonly id: NodeId;
  readonly transport: Transport;
  readonly inbox: Inbox;
  readonly logs: ReturnType<typeof captureLogs>;
  readonly address: PeerAddress;
}

export async function startNode(
  options: {
    id: NodeId;
    peers?: Map<NodeId, PeerAddress>;
    port?: number;
  } & Partial<Omit<TransportOptions, 'nodeId' | 'listen' | 'logger' | 'onMessages' | 'peers'>>,
): Promise<TestNode> {
  const { id, port, peers, ...rest } = options;
  const inbox = new Inbox();
  const logs = captureLogs();
  const transport = new Transport({
    clusterId: 'test-cluster',
    ...rest,
    nodeId: id,
    listen: { host: loopback, port: port ?? 0 },
    peers: peers ?? new Map(),
    logger: logs.logger,
    limits: { ...testLimits, ...rest.limits },
    onMessages: inbox.onMessages,
  });
  const address = await transport.start();
  return { id, transport, inbox, logs, address };
}

/** Start nodes and introduce each to all the others. */
export async function startCluster(
  ids: readonly NodeId[],
  options: Partial<Omit<TransportOptions, 'nodeId' | 'listen' | 'logger' | 'onMessages' | 'peers'>> = {},
): Promise<TestNode[]> {
  const nodes = await Promise.all(ids.map((id) => startNode({ id, ...options })));
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, b.address);
  return nodes;
}

/** A port on loopback with nothing listening (bound, noted, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: loopback, port: 0 }, resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resolve at the next check phase: lets one flush happen. Not a sleep: no time passes by design. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------------------
// Raw sockets, to speak (or break) the protocol by hand

export class RawClient {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ frameBytesMax: 64 * 1024 * 1024 });
  private readonly waiters = new Waiters();
  private isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let frame = this.decoder.next(); frame !== null; frame = this.decoder.next())
        this.frames.push(frame);
      this.waiters.check();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.waiters.check();
        resolve();
      }),
    );
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect({ host: loopback, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  async nextFrame(): Promise<RawFrame> {
    await this.waiters.until(() => this.frames.length > 0 || this.isClosed, 'a frame from the server');
    const frame = this.frames.shift();
    if (frame === undefined) throw new Error('connection closed before a frame arrived');
    return frame;
  }

  async waitClosed(): Promise<void> {
    await this.waiters.until(() => this.isClosed, 'the server to close the connection');
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }
}

/**
 * A TCP relay on loopback between a transport and its peer, so a test can cut live
 * connections. `cutAll()` destroys both sides of every relayed connection.
 */
export class TcpRelay {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  /** Called with each chunk relayed towards the target; may cut mid-stream. */
  onForward: ((chunk: Buffer, relay: TcpRelay) => void) | null = null;
  port = 0;
  connections = 0;

  constructor(private readonly target: PeerAddress) {
    this.server = createServer((client) => {
      this.connections++;
      const upstream = connect({ host: this.target.host, port: this.target.port });
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        this.onForward?.(chunk, this);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
  }

  async start(): Promise<PeerAddress> {
    await new Promise<void>((resolve) => this.server.listen({ host: loopback, port: 0 }, resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    this.port = address.port;
    return { host: loopback, port: this.port };
  }

  cutAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------
// Messages of every type

export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** One message of each type from `from` to `to`, with distinctive field values. */
export function everyMessageType(from: NodeId, to: NodeId, seed: number): Message[] {
  const term = 1 + seed;
  return [
    {
      type: 'app',
      from,
      to,
      term,
      index: 2 ** 40 + seed,
      logTerm: term,
      commit: seed,
      entries: [
        { term, index: 2 ** 40 + seed + 1, type: 0, data: bytesOf(seed % 100, seed) },
        { term, index: 2 ** 40 + seed + 2, type: 1, data: new Uint8Array(0) },
      ],
    },
    { type: 'app', from, to, term, index: 0, logTerm: 0, commit: 0, entries: [] },
    { type: 'appResp', from, to, term, index: seed, reject: seed % 2 === 0, hintIndex: seed, hintTerm: 0 },
    { type: 'vote', from, to, term, index: seed, logTerm: term, transfer: false },
    { type: 'preVote', from, to, term: term + 1, index: seed, logTerm: term, transfer: true },
    { type: 'voteResp', from, to, term, reject: false },
    { type: 'preVoteResp', from, to, term, reject: true },
    { type: 'heartbeat', from, to, term, commit: Number.MAX_SAFE_INTEGER - seed, round: seed },
    { type: 'heartbeatResp', from, to, term, round: seed * 1000 },
    {
      type: 'snap',
      from,
      to,
      term,
      metadata: { index: 10 + seed, term, confState: { voters: [from, to], learners: ['learner-1'] } },
      offset: seed * 4096,
      data: bytesOf(4096, seed + 7),
      done: seed % 3 === 0,
    },
    { type: 'snapResp', from, to, term, index: 10 + seed, offset: seed * 4096 },
    { type: 'timeoutNow', from, to, term },
  ];
}

export function envelopesFor(from: NodeId, to: NodeId, count: number, groups = 7): Envelope[] {
  const out: Envelope[] = [];
  for (let seed = 0; out.length < count; seed++) {
    for (const message of everyMessageType(from, to, seed)) {
      if (out.length === count) break;
      out.push({ groupId: (seed * 13 + out.length) % groups, message });
    }
  }
  return out;
}

export function isHeartbeatType(envelope: Envelope): boolean {
  return envelope.message.type === 'heartbeat' || envelope.message.type === 'heartbeatResp';
}

/**
 * A deep copy in which every binary is replaced by its class, length and SHA-256, so that
 * comparing megabytes of snapshot data with toStrictEqual stays fast yet exact (a Buffer
 * where a Uint8Array was sent still differs).
 */
export function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    const digest = createHash('sha256').update(value).digest('hex');
    return `${value.constructor.name}(${value.byteLength}):${digest}`;
  }
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    const proto: unknown = Object.getPrototypeOf(value);
    const out: Record<string, unknown> = { prototype: proto === Object.prototype ? 'Object' : String(proto) };
    for (const [key, field] of Object.entries(value)) out[key] = canonical(field);
    return out;
  }
  return value;
}

/**
 * What a receiver must see of `sent`: with heartbeat coalescing, heartbeats ride in a
 * bundle at the end of their frame, so each of the three classes keeps its own order.
 */
export function byClass(envelopes: readonly Envelope[]): unknown {
  return {
    others: canonical(envelopes.filter((e) => !isHeartbeatType(e))),
    heartbeats: canonical(envelopes.filter((e) => e.message.type === 'heartbeat')),
    responses: canonical(envelopes.filter((e) => e.message.type === 'heartbeatResp')),
  };
}
