import type { Socket } from 'node:net';
import type { NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import { dialableAddress } from './addresses.js';
import {
  decodeBody,
  encodeReject,
  encodeWelcome,
  FrameDecoder,
  FrameError,
  FrameType,
  type Hello,
  parseBatch,
  parseHello,
  protocolVersion,
  type RawFrame,
  RejectReason,
  supportedProtocolVersions,
} from './codec.js';
import { expandHeartbeats } from './heartbeats.js';
import { handshakeFrameBytesMax, type TransportLimits } from './limits.js';
import { errorMessage, ShapeError } from './shape.js';
import type { TransportCounters } from './stats.js';
import type { Envelope, LocalAddresses, PeerIdentity } from './types.js';

/** What an inbound connection shares with its transport. */
export interface InboundContext {
  readonly localNodeId: NodeId;
  /** This process's random id: a hello carrying it was dialed by this very process. */
  readonly instance: string;
  readonly clusterId: string;
  readonly limits: TransportLimits;
  readonly logger: Logger;
  readonly counters: TransportCounters;
  isKnownPeer(nodeId: NodeId): boolean;
  /** What this node announces in its welcome. */
  localAddresses(): LocalAddresses;
  /** A hello that passed the checks announced the dialer's addresses. */
  identified(peer: PeerIdentity): void;
  /** The handshake succeeded: the connection now speaks for `remoteNodeId`. */
  opened(connection: InboundConnection): void;
  closed(connection: InboundConnection): void;
  deliver(from: NodeId, envelopes: readonly Envelope[]): void;
  deliverControl(from: NodeId, value: unknown): void;
}

/** `answered`: an identify dial got its welcome; the dialer closes. `rejected`: likewise after a reject. */
type InboundState = 'handshake' | 'open' | 'answered' | 'rejected' | 'closed';

/**
 * The receiving half of a link: a connection a peer dialed. It must open with a hello
 * frame within `handshakeTimeoutMs`; after the welcome it carries only batch frames. Any
 * violation closes this connection alone, with one log line naming both nodes.
 */
export class InboundConnection {
  private state: InboundState = 'handshake';
  private readonly decoder = new FrameDecoder({ frameBytesMax: handshakeFrameBytesMax });
  private timer: NodeJS.Timeout | null;
  /** Set by a valid-looking hello, so later log lines can name the peer. */
  private claimedNodeId: NodeId | null = null;
  private wasAccepted = false;
  readonly remoteAddress: string;

  constructor(
    private readonly ctx: InboundContext,
    private readonly socket: Socket,
  ) {
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    // Also bounds how long a rejected dialer may keep its half-closed socket around.
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'handshake')
        this.protocolError(`no hello within ${ctx.limits.handshakeTimeoutMs} ms`);
      else if (this.state === 'rejected' || this.state === 'answered') socket.destroy();
    }, ctx.limits.handshakeTimeoutMs);
    this.timer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => {
      ctx.logger.debug(
        { remote: this.describeRemote(), remoteAddress: this.remoteAddress, err: error.message },
        `inbound connection from ${this.describeRemote()} to node ${ctx.localNodeId} failed: ${error.message}`,
      );
    });
    socket.on('close', () => {
      if (this.state === 'open') {
        ctx.logger.info(
          { remote: this.describeRemote(), remoteAddress: this.remoteAddress },
          `node ${ctx.localNodeId} lost the inbound connection from ${this.describeRemote()}`,
        );
      }
      this.state = 'closed';
      this.clearTimer();
      ctx.closed(this);
    });
  }

  /** The peer's node id once the handshake has succeeded. */
  get remoteNodeId(): NodeId | null {
    return this.wasAccepted ? this.claimedNodeId : null;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  destroy(reason: string): void {
    if (this.state === 'closed') return;
    this.ctx.logger.info(
      { remote: this.describeRemote(), remoteAddress: this.remoteAddress, reason },
      `node ${this.ctx.localNodeId} closed the inbound connection from ${this.describeRemote()}: ${reason}`,
    );
    this.state = 'closed';
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.ctx.counters.bytesReceived += chunk.byteLength;
    if (this.state !== 'handshake' && this.state !== 'open') return;
    this.decoder.push(chunk);
    while (this.state === 'handshake' || this.state === 'open') {
      let frame: RawFrame | null;
      try {
        frame = this.decoder.next();
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.protocolError(error.message);
        return;
      }
      if (frame === null) return;
      this.ctx.counters.framesReceived++;
      if (this.state === 'handshake') this.onHello(frame);
      else if (frame.type === FrameType.Control) this.onControl(frame);
      else this.onBatch(frame);
    }
  }

  private onHello(frame: RawFrame): void {
    if (frame.type !== FrameType.Hello) {
      this.protocolError(`expected a hello frame, got frame type ${frame.type}`);
      return;
    }
    let hello: Hello;
    try {
      hello = parseHello(decodeBody(frame.body));
    } catch (error) {
      this.reject(RejectReason.Malformed, `malformed hello: ${errorMessage(error)}`);
      return;
    }
    this.claimedNodeId = hello.nodeId;
    const { localNodeId, clusterId } = this.ctx;
    const them = `node ${hello.nodeId}`;
    if (!supportedProtocolVersions.includes(hello.version)) {
      this.reject(
        RejectReason.VersionUnsupported,
        `${them} speaks protocol version ${hello.version}; node ${localNodeId} supports ${supportedProtocolVersions.join(', ')}`,
      );
    } else if (hello.clusterId !== clusterId) {
      this.reject(
        RejectReason.ClusterMismatch,
        `${them} is in cluster ${JSON.stringify(hello.clusterId)}; node ${localNodeId} is in cluster ${JSON.stringify(clusterId)}`,
      );
    } else if (hello.to !== null && hello.to !== localNodeId) {
      this.reject(
        RejectReason.WrongNode,
        `${them} meant to reach node ${hello.to}, but reached node ${localNodeId}: its peer table is wrong`,
      );
    } else if (hello.to === null && hello.nodeId === localNodeId && hello.instance === this.ctx.instance) {
      // We dialed ourselves (a --join list naming every server): say who we are, learn nothing.
      this.answerIdentify();
    } else if (hello.nodeId === localNodeId) {
      this.reject(
        RejectReason.DuplicateNodeId,
        `${them} claims the node id of node ${localNodeId} itself: two servers share one node id`,
      );
    } else if (hello.to === null) {
      this.learn(hello);
      this.answerIdentify();
    } else if (!this.ctx.isKnownPeer(hello.nodeId) && hello.raft === undefined) {
      // A node that says where it listens can be answered, so it may be new to us (a server
      // joining, or a member we have not heard of yet); one that does not is refused.
      this.reject(RejectReason.UnknownNode, `${them} is not a known peer of node ${localNodeId}`);
    } else {
      // Learn first: Raft answers to this peer go out on a connection dialed to that address.
      this.learn(hello);
      this.accept();
    }
  }

  /** Hand the addresses a hello announced to the transport, made dialable from here. */
  private learn(hello: Hello): void {
    if (hello.raft === undefined && hello.http === undefined) return;
    const seen = this.socket.remoteAddress;
    this.ctx.identified({
      nodeId: hello.nodeId,
      raft: hello.raft === undefined ? null : dialableAddress(hello.raft, seen),
      http: hello.http === undefined ? null : dialableAddress(hello.http, seen),
    });
  }

  private welcomeFrame(): Buffer {
    const local = this.ctx.localAddresses();
    return encodeWelcome({
      version: protocolVersion,
      nodeId: this.ctx.localNodeId,
      ...(local.raft === null ? {} : { raft: local.raft }),
      ...(local.http === null ? {} : { http: local.http }),
      control: true,
      instance: this.ctx.instance,
    });
  }

  /**
   * An identify dial: the dialer knows our address, not our id. Answer with a welcome
   * naming us and let it close; the connection never carries Raft traffic, so it does not
   * replace the dialer's open connection, if it has one.
   */
  private answerIdentify(): void {
    this.state = 'answered';
    const welcome = this.welcomeFrame();
    this.ctx.counters.framesSent++;
    this.ctx.counters.bytesSent += welcome.byteLength;
    this.ctx.logger.debug(
      { remote: this.claimedNodeId, remoteAddress: this.remoteAddress },
      `node ${this.ctx.localNodeId} told node ${this.claimedNodeId} at ${this.remoteAddress} who it is`,
    );
    // The handshake timer destroys the socket if the dialer never closes its side.
    this.socket.end(welcome);
  }

  private accept(): void {
    this.state = 'open';
    this.wasAccepted = true;
    this.clearTimer();
    this.decoder.frameBytesMax = this.ctx.limits.frameBytesMax;
    const welcome = this.welcomeFrame();
    this.ctx.counters.framesSent++;
    this.ctx.counters.bytesSent += welcome.byteLength;
    this.socket.write(welcome);
    this.ctx.logger.info(
      { remote: this.claimedNodeId, remoteAddress: this.remoteAddress },
      `node ${this.ctx.localNodeId} accepted a connection from node ${this.claimedNodeId} at ${this.remoteAddress}`,
    );
    this.ctx.opened(this);
  }

  private reject(reason: RejectReason, detail: string): void {
    this.state = 'rejected';
    this.ctx.counters.inboundHandshakesRejected++;
    this.ctx.logger.warn(
      { remote: this.describeRemote(), remoteAddress: this.remoteAddress, reason },
      `node ${this.ctx.localNodeId} rejected the handshake of ${this.describeRemote()} (${reason}): ${detail}`,
    );
    const frame = encodeReject({
      reason,
      detail,
      nodeId: this.ctx.localNodeId,
      supportedVersions: supportedProtocolVersions,
    });
    this.ctx.counters.framesSent++;
    this.ctx.counters.bytesSent += frame.byteLength;
    // end() lets the reject frame reach the dialer before the FIN; the handshake timer
    // destroys the socket if the dialer never closes its side.
    this.socket.end(frame);
  }

  private onBatch(frame: RawFrame): void {
    const from = this.claimedNodeId;
    if (from === null) return;
    if (frame.type !== FrameType.Batch) {
      this.protocolError(`expected a batch frame, got frame type ${frame.type}`);
      return;
    }
    let decoded: unknown;
    try {
      decoded = decodeBody(frame.body);
    } catch (error) {
      this.protocolError(
        `undecodable MessagePack in a ${frame.frameBytes}-byte frame: ${errorMessage(error)}`,
      );
      return;
    }
    let envelopes: Envelope[];
    try {
      const batch = parseBatch(decoded);
      envelopes = batch.envelopes;
      if (batch.heartbeats !== null) envelopes.push(...expandHeartbeats(batch.heartbeats));
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error;
      this.protocolError(`malformed batch: ${error.message}`);
      return;
    }
    // Raft node ids are server node ids: a message must come from the node that
    // authenticated this connection and be meant for this node.
    for (const { message } of envelopes) {
      if (message.from !== from || message.to !== this.ctx.localNodeId) {
        this.protocolError(
          `misaddressed ${message.type} message from ${message.from} to ${message.to} on the connection ` +
            `from node ${from} to node ${this.ctx.localNodeId}`,
        );
        return;
      }
    }
    this.ctx.counters.messagesReceived += envelopes.length;
    this.ctx.deliver(from, envelopes);
  }

  private onControl(frame: RawFrame): void {
    const from = this.claimedNodeId;
    if (from === null) return;
    const bytesMax = Math.min(this.ctx.limits.controlFrameBytesMax, this.ctx.limits.frameBytesMax);
    if (frame.frameBytes > bytesMax) {
      this.protocolError(`control frame of ${frame.frameBytes} bytes exceeds the limit of ${bytesMax} bytes`);
      return;
    }
    let value: unknown;
    try {
      value = decodeBody(frame.body);
    } catch (error) {
      this.protocolError(`undecodable MessagePack in a control frame: ${errorMessage(error)}`);
      return;
    }
    this.ctx.counters.controlFramesReceived++;
    // The layer above checks the value's shape: it alone knows what it means.
    this.ctx.deliverControl(from, value);
  }

  private protocolError(reason: string): void {
    this.ctx.counters.protocolErrors++;
    this.ctx.logger.warn(
      { remote: this.describeRemote(), remoteAddress: this.remoteAddress, reason },
      `node ${this.ctx.localNodeId} closed the inbound connection from ${this.describeRemote()}: ${reason}`,
    );
    this.state = 'closed';
    this.socket.destroy();
  }

  private describeRemote(): string {
    return this.claimedNodeId === null
      ? `an unidentified peer at ${this.remoteAddress}`
      : `node ${this.claimedNodeId} at ${this.remoteAddress}`;
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
