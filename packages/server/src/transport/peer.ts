import { connect, type Socket } from 'node:net';
import type { NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import { dialableAddress } from './addresses.js';
import {
  batchOverheadBytes,
  decodeBody,
  emptyBundleBytesMax,
  encodeBatchFrame,
  encodeEnvelope,
  encodeHello,
  FrameDecoder,
  FrameError,
  FrameType,
  parseReject,
  parseWelcome,
  protocolVersion,
  type RawFrame,
  type Reject,
  type Welcome,
} from './codec.js';
import { type HeartbeatBundle, uintBytes } from './heartbeats.js';
import { handshakeFrameBytesMax, type TransportLimits } from './limits.js';
import { errorMessage } from './shape.js';
import type { PeerState, PeerStats, TransportCounters } from './stats.js';
import type { Envelope, LocalAddresses, PeerAddress, PeerIdentity } from './types.js';

/** What an outbound peer shares with its transport. */
export interface PeerContext {
  readonly localNodeId: NodeId;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  readonly counters: TransportCounters;
  readonly coalesceHeartbeats: boolean;
  lookup(nodeId: NodeId): PeerAddress | undefined;
  /** What this node announces in its hello. */
  localAddresses(): LocalAddresses;
  /** A welcome announced the peer's addresses. */
  identified(peer: PeerIdentity): void;
}

type QueueItem =
  /** An envelope, already MessagePack-encoded. */
  | { readonly kind: 'envelope'; readonly bytes: Uint8Array; readonly costBytes: number }
  /** A heartbeat (`groupId, term, commit, round`) or response (`groupId, term, round`) bound for the frame's bundle. */
  | {
      readonly kind: 'heartbeat' | 'response';
      readonly numbers: readonly number[];
      readonly costBytes: number;
    };

/** The reconnect exponent stops here; the delay is capped by reconnectDelayMaxMs well before. */
const backoffExponentMax = 30;

/**
 * The sending half of the link to one peer: a bounded queue and the one outbound
 * connection that drains it. This node sends only on connections it dialed and receives
 * only on connections it accepted (see docs/transport.md for why), so nothing here reads
 * Raft traffic, and there is no race over which of two connections to keep.
 *
 *   idle ──(something queued, at flush)──► connecting ──(welcome)──► ready
 *    ▲                                        │                        │
 *    └──(timer, queue empty)── backoff ◄──────┴──(fail / lost)─────────┘
 *                                 └──(timer, queue not empty)──► connecting
 */
export class OutboundPeer {
  private state: PeerState = 'idle';
  private readonly queue: QueueItem[] = [];
  /** Index of the first live item in `queue`: taking from the front is O(1). */
  private head = 0;
  private queuedBytes = 0;
  /** Encoded control frames; they go before any batch once connected. */
  private readonly controlQueue: Buffer[] = [];
  /** Whether the current connection's welcome offered control frames. */
  private peerTakesControl = false;
  private warnedNoControl = false;
  private socket: Socket | null = null;
  private address: PeerAddress | null = null;
  /** Why the current connection is being closed, for the log line when 'close' arrives. */
  private failure: string | null = null;
  private blocked = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private everConnected = false;
  /** Consecutive failed dials: only the first of a streak is logged at warn. */
  private failureStreak = 0;
  private warnedOversized = false;
  private readonly emptyBundleBytes: number;
  private framesSent = 0;
  private messagesSent = 0;
  private messagesDropped = 0;
  private reconnects = 0;

  constructor(
    private readonly ctx: PeerContext,
    readonly nodeId: NodeId,
  ) {
    this.emptyBundleBytes = emptyBundleBytesMax(ctx.localNodeId, nodeId);
  }

  get queuedMessages(): number {
    return this.queue.length - this.head;
  }

  stats(): PeerStats {
    return {
      state: this.state,
      queuedMessages: this.queuedMessages,
      queuedBytes: this.queuedBytes,
      socketBufferedBytes: this.socket?.writableLength ?? 0,
      blocked: this.blocked,
      framesSent: this.framesSent,
      messagesSent: this.messagesSent,
      messagesDropped: this.messagesDropped,
      reconnects: this.reconnects,
    };
  }

  /** Queue one envelope; it leaves at the next flush. Drops it (and counts why) if it cannot. */
  enqueue(envelope: Envelope): void {
    const { limits } = this.ctx;
    if (this.state === 'closed') {
      this.drop('messagesDroppedDisconnected', 1);
      return;
    }
    if (this.queuedMessages >= limits.sendQueueMessagesMax) {
      this.drop('messagesDroppedQueueFull', 1);
      return;
    }
    const item = this.toItem(envelope);
    if (item.kind === 'envelope' && batchOverheadBytes + 1 + item.costBytes > limits.frameBytesMax) {
      this.drop('messagesDroppedOversized', 1);
      if (!this.warnedOversized) {
        // Once per peer: this is a configuration mismatch, and Raft will resend it forever.
        this.warnedOversized = true;
        this.ctx.logger.warn(
          { peer: this.nodeId, bytes: item.costBytes, frameBytesMax: limits.frameBytesMax },
          `dropping a ${envelope.message.type} message of ${item.costBytes} bytes to node ${this.nodeId}: ` +
            'it does not fit in one frame; frameBytesMax must exceed the Raft messageBytesMax',
        );
      }
      return;
    }
    if (this.queuedBytes + item.costBytes > limits.sendQueueBytesMax) {
      this.drop('messagesDroppedQueueFull', 1);
      return;
    }
    this.queue.push(item);
    this.queuedBytes += item.costBytes;
  }

  /** Queue one encoded control frame; it leaves at the next flush, before any batch. */
  enqueueControl(frame: Buffer): void {
    const { limits } = this.ctx;
    const bytesMax = Math.min(limits.controlFrameBytesMax, limits.frameBytesMax);
    if (this.state === 'closed' || this.controlQueue.length >= limits.controlQueueFramesMax) {
      this.ctx.counters.controlFramesDropped++;
      return;
    }
    if (frame.byteLength > bytesMax) {
      this.ctx.counters.controlFramesDropped++;
      this.ctx.logger.warn(
        { peer: this.nodeId, bytes: frame.byteLength, controlFrameBytesMax: bytesMax },
        `dropping a control frame of ${frame.byteLength} bytes to node ${this.nodeId}: the limit is ${bytesMax}`,
      );
      return;
    }
    this.controlQueue.push(frame);
  }

  private get hasQueued(): boolean {
    return this.queuedMessages > 0 || this.controlQueue.length > 0;
  }

  /** Send what is queued, dialing first if need be. Called once per event-loop turn. */
  flush(): void {
    switch (this.state) {
      case 'idle':
        if (this.hasQueued) this.dial();
        return;
      case 'ready':
        this.writeFrames();
        return;
      case 'connecting':
      case 'backoff':
      case 'closed':
        return;
    }
  }

  /** Drop the connection (for instance after an address change); the next send redials. */
  reset(reason: string): void {
    if (this.socket === null) return;
    this.failure ??= reason;
    this.socket.destroy();
  }

  /** Stop for good: drop the queue and the connection. */
  close(): void {
    this.state = 'closed';
    this.clearTimer();
    this.dropQueued('messagesDroppedDisconnected');
    this.dropControl();
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }

  private toItem(envelope: Envelope): QueueItem {
    const m = envelope.message;
    // Coalescing needs the bundle's from/to to be this link's; anything else goes as is.
    if (this.ctx.coalesceHeartbeats && m.from === this.ctx.localNodeId && m.to === this.nodeId) {
      if (m.type === 'heartbeat') {
        const numbers = [envelope.groupId, m.term, m.commit, m.round];
        return { kind: 'heartbeat', numbers, costBytes: sumUintBytes(numbers) };
      }
      if (m.type === 'heartbeatResp') {
        const numbers = [envelope.groupId, m.term, m.round];
        return { kind: 'response', numbers, costBytes: sumUintBytes(numbers) };
      }
    }
    const bytes = encodeEnvelope(envelope);
    return { kind: 'envelope', bytes, costBytes: bytes.byteLength };
  }

  private drop(counter: DropCounter, count: number): void {
    if (count === 0) return;
    this.ctx.counters[counter] += count;
    this.messagesDropped += count;
  }

  private dropControl(): void {
    this.ctx.counters.controlFramesDropped += this.controlQueue.length;
    this.controlQueue.length = 0;
  }

  private dropQueued(counter: DropCounter): void {
    this.drop(counter, this.queuedMessages);
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
  }

  // -------------------------------------------------------------------------------------
  // Sending

  private writeFrames(): void {
    const socket = this.socket;
    // A destroyed socket awaits its 'close' event, which drops the queue; writing would lose frames silently.
    if (socket === null || socket.destroyed) return;
    this.writeControl(socket);
    while (!this.blocked && this.queuedMessages > 0) {
      const { frame, messages } = this.takeFrame();
      const { counters } = this.ctx;
      counters.framesSent++;
      counters.bytesSent += frame.byteLength;
      counters.messagesSent += messages;
      this.framesSent++;
      this.messagesSent += messages;
      // Past the high-water mark the socket still buffers the frame, but we stop here until
      // 'drain' so it holds at most one frame beyond the mark; meanwhile the queue is
      // bounded and drops. Raft retransmits whatever is dropped.
      if (!socket.write(frame)) this.blocked = true;
    }
  }

  private writeControl(socket: Socket): void {
    if (this.controlQueue.length === 0) return;
    if (!this.peerTakesControl) {
      // An older build would close the connection on an unknown frame type.
      if (!this.warnedNoControl) {
        this.warnedNoControl = true;
        this.ctx.logger.warn(
          { peer: this.nodeId },
          `node ${this.nodeId} does not take control frames (an older build?); dropping them`,
        );
      }
      this.dropControl();
      return;
    }
    const { counters } = this.ctx;
    while (!this.blocked && this.controlQueue.length > 0) {
      const frame = this.controlQueue.shift();
      if (frame === undefined) break;
      counters.framesSent++;
      counters.bytesSent += frame.byteLength;
      counters.controlFramesSent++;
      this.framesSent++;
      if (!socket.write(frame)) this.blocked = true;
    }
  }

  /** Take the longest prefix of the queue that fits in one frame (always at least one item). */
  private takeFrame(): { frame: Buffer; messages: number } {
    const budget = this.ctx.limits.frameBytesMax - batchOverheadBytes;
    const envelopes: Uint8Array[] = [];
    const heartbeats: number[] = [];
    const responses: number[] = [];
    let used = 1; // the nil standing in for an absent bundle
    let bundled = false;
    let taken = 0;
    while (this.head < this.queue.length) {
      const item = this.queue[this.head];
      if (item === undefined) break;
      let extra = item.costBytes;
      if (item.kind !== 'envelope' && !bundled) extra += this.emptyBundleBytes - 1;
      if (taken > 0 && used + extra > budget) break;
      if (item.kind === 'envelope') {
        envelopes.push(item.bytes);
      } else {
        bundled = true;
        (item.kind === 'heartbeat' ? heartbeats : responses).push(...item.numbers);
      }
      used += extra;
      taken++;
      this.queuedBytes -= item.costBytes;
      this.head++;
    }
    this.compactQueue();
    const bundle: HeartbeatBundle | null = bundled
      ? { from: this.ctx.localNodeId, to: this.nodeId, heartbeats, responses }
      : null;
    return { frame: encodeBatchFrame(bundle, envelopes), messages: taken };
  }

  private compactQueue(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  // -------------------------------------------------------------------------------------
  // Connecting

  private dial(): void {
    const { ctx } = this;
    const address = ctx.lookup(this.nodeId);
    if (address === undefined || !isValidPeerAddress(address)) {
      this.dropQueued('messagesDroppedUnknownPeer');
      ctx.logger.warn(
        { peer: this.nodeId, address },
        `node ${ctx.localNodeId} has no valid address for node ${this.nodeId}; dropping what was queued for it`,
      );
      return;
    }
    this.state = 'connecting';
    this.address = address;
    this.failure = null;
    ctx.counters.dials++;
    const socket = connect({ host: address.host, port: address.port });
    this.socket = socket;
    socket.setNoDelay(true); // we batch per event-loop turn ourselves; Nagle would only add delay
    socket.setKeepAlive(true, ctx.limits.keepAliveDelayMs);
    const decoder = new FrameDecoder({ frameBytesMax: handshakeFrameBytesMax });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fail(socket, `no handshake answer within ${ctx.limits.handshakeTimeoutMs} ms`);
    }, ctx.limits.handshakeTimeoutMs);
    this.timer.unref();
    socket.once('connect', () => {
      const local = ctx.localAddresses();
      const hello = encodeHello({
        version: protocolVersion,
        clusterId: ctx.clusterId,
        nodeId: ctx.localNodeId,
        to: this.nodeId,
        ...(local.raft === null ? {} : { raft: local.raft }),
        ...(local.http === null ? {} : { http: local.http }),
      });
      ctx.counters.framesSent++;
      ctx.counters.bytesSent += hello.byteLength;
      socket.write(hello);
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, decoder, chunk));
    socket.on('drain', () => {
      if (socket !== this.socket) return;
      this.blocked = false;
      this.writeFrames();
    });
    socket.on('error', (error: Error) => {
      this.failure ??= error.message;
    });
    socket.on('close', () => this.onClose(socket));
  }

  private onData(socket: Socket, decoder: FrameDecoder, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.ctx.counters.bytesReceived += chunk.byteLength;
    decoder.push(chunk);
    while (socket === this.socket && !socket.destroyed) {
      let frame: RawFrame | null;
      try {
        frame = decoder.next();
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.protocolError(socket, error.message);
        return;
      }
      if (frame === null) return;
      this.ctx.counters.framesReceived++;
      this.onFrame(socket, frame);
    }
  }

  private onFrame(socket: Socket, frame: RawFrame): void {
    if (this.state !== 'connecting') {
      this.protocolError(socket, `unexpected frame of type ${frame.type} after the handshake`);
      return;
    }
    if (frame.type !== FrameType.Welcome && frame.type !== FrameType.Reject) {
      this.protocolError(socket, `expected a welcome or reject frame, got frame type ${frame.type}`);
      return;
    }
    let reject: Reject | null = null;
    let welcome: Welcome | null = null;
    try {
      if (frame.type === FrameType.Welcome) welcome = parseWelcome(decodeBody(frame.body));
      else reject = parseReject(decodeBody(frame.body));
    } catch (error) {
      this.protocolError(socket, `undecodable handshake answer: ${errorMessage(error)}`);
      return;
    }
    if (welcome !== null) {
      if (welcome.nodeId !== this.nodeId) {
        this.protocolError(socket, `node ${welcome.nodeId} answered a hello meant for node ${this.nodeId}`);
        return;
      }
      this.onWelcome(welcome);
      return;
    }
    if (reject === null) return;
    this.ctx.counters.outboundHandshakesRejected++;
    this.ctx.logger.error(
      { peer: this.nodeId, address: this.describeAddress(), reason: reject.reason },
      `node ${reject.nodeId} at ${this.describeAddress()} rejected the handshake of node ` +
        `${this.ctx.localNodeId} (${reject.reason}): ${reject.detail}`,
    );
    this.fail(socket, `handshake rejected (${reject.reason})`);
  }

  private onWelcome(welcome: Welcome): void {
    this.peerTakesControl = welcome.control === true;
    if (welcome.raft !== undefined || welcome.http !== undefined) {
      const seen = this.address?.host;
      this.ctx.identified({
        nodeId: this.nodeId,
        raft: welcome.raft === undefined ? null : dialableAddress(welcome.raft, seen),
        http: welcome.http === undefined ? null : dialableAddress(welcome.http, seen),
      });
    }
    this.becomeReady();
  }

  private becomeReady(): void {
    this.clearTimer();
    this.state = 'ready';
    this.attempt = 0;
    this.failureStreak = 0;
    this.ctx.counters.connectionsEstablished++;
    if (this.everConnected) {
      this.ctx.counters.reconnects++;
      this.reconnects++;
    }
    this.everConnected = true;
    this.ctx.logger.info(
      { peer: this.nodeId, address: this.describeAddress() },
      `node ${this.ctx.localNodeId} connected to node ${this.nodeId} at ${this.describeAddress()}`,
    );
    this.writeFrames();
  }

  private protocolError(socket: Socket, reason: string): void {
    this.ctx.counters.protocolErrors++;
    this.fail(socket, `protocol error: ${reason}`);
  }

  private fail(socket: Socket, reason: string): void {
    if (socket !== this.socket) return;
    this.failure ??= reason;
    socket.destroy();
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.blocked = false;
    this.clearTimer();
    const wasReady = this.state === 'ready';
    const reason = this.failure ?? 'closed by the peer';
    // Whatever waited for this connection is stale by the time another is up; Raft resends,
    // and the layer above retries its control requests on its own timeout.
    this.dropQueued('messagesDroppedDisconnected');
    this.dropControl();
    this.peerTakesControl = false;
    const fields = { peer: this.nodeId, address: this.describeAddress(), reason };
    if (wasReady) {
      this.ctx.logger.warn(
        fields,
        `node ${this.ctx.localNodeId} lost its connection to node ${this.nodeId}: ${reason}`,
      );
    } else {
      this.ctx.counters.dialFailures++;
      this.failureStreak++;
      const line = `node ${this.ctx.localNodeId} could not connect to node ${this.nodeId} at ${this.describeAddress()}: ${reason}`;
      if (this.failureStreak === 1) this.ctx.logger.warn(fields, line);
      else this.ctx.logger.debug({ ...fields, failureStreak: this.failureStreak }, line);
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const { reconnectDelayMinMs, reconnectDelayMaxMs } = this.ctx.limits;
    const ceiling = Math.min(reconnectDelayMaxMs, reconnectDelayMinMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, backoffExponentMax);
    // "Equal jitter": at least half the step, so retries back off, plus a random half, so
    // the peers of a restarted server do not all redial in the same millisecond.
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    this.state = 'backoff';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state !== 'backoff') return;
      this.state = 'idle';
      // Dial lazily: only when something is waiting to be sent.
      if (this.hasQueued) this.dial();
    }, delayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private describeAddress(): string {
    return this.address === null ? 'no address' : `${this.address.host}:${this.address.port}`;
  }
}

type DropCounter =
  | 'messagesDroppedQueueFull'
  | 'messagesDroppedOversized'
  | 'messagesDroppedDisconnected'
  | 'messagesDroppedUnknownPeer';

function sumUintBytes(numbers: readonly number[]): number {
  let total = 0;
  for (const n of numbers) total += uintBytes(n);
  return total;
}

export function isValidPeerAddress(address: PeerAddress): boolean {
  return (
    typeof address.host === 'string' &&
    address.host.length > 0 &&
    Number.isInteger(address.port) &&
    address.port > 0 &&
    address.port < 65536
  );
}
