import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { isValidNodeId, type NodeId, RaftInvariantError } from '@conclave/raft';
import type { Logger } from 'pino';
import { clusterIdLengthMax, encodeControlFrame } from './codec.js';
import { type IdentifiedPeer, identifyPeer } from './identify.js';
import { InboundConnection, type InboundContext } from './inbound.js';
import { resolveTransportLimits, type TransportLimits } from './limits.js';
import { isValidPeerAddress, OutboundPeer, type PeerContext } from './peer.js';
import { errorMessage } from './shape.js';
import { newCounters, type PeerStats, type TransportCounters, type TransportStats } from './stats.js';
import type { Envelope, LocalAddresses, PeerAddress, PeerIdentity, PeerResolver } from './types.js';

export interface TransportOptions {
  /** This server's node id; it is also its Raft node id in every group. */
  readonly nodeId: NodeId;
  /** Servers of different clusters refuse each other's connections. */
  readonly clusterId: string;
  /** Where to accept peer connections; port 0 picks a free port (see {@link Transport.start}). */
  readonly listen: PeerAddress;
  /** Known peers. May include this node, which is ignored for dialing. */
  readonly peers?: ReadonlyMap<NodeId, PeerAddress>;
  /** Consulted, at dial and at handshake, for nodes not in `peers`. */
  readonly resolvePeer?: PeerResolver;
  readonly logger: Logger;
  readonly limits?: Partial<TransportLimits>;
  /**
   * Carry the heartbeats and heartbeat responses of all groups in one compact bundle per
   * frame (see heartbeats.ts). Default true. The receiver gets them back as ordinary
   * envelopes, after the other envelopes of the same frame.
   */
  readonly coalesceHeartbeats?: boolean;
  /**
   * Called once per received frame with its envelopes, already checked for shape and
   * addressing. Runs on the socket's data event: it should hand the messages to Raft and
   * return. If it throws, the error is logged and the connection stays up.
   */
  readonly onMessages: (from: NodeId, envelopes: readonly Envelope[]) => void;
  /**
   * The Raft address announced in handshakes, so that a node we are new to can dial us
   * back. Default: the address {@link Transport.start} bound. The HTTP address is set
   * later with {@link Transport.setAdvertisedHttp}, once that server listens.
   */
  readonly advertiseRaft?: PeerAddress;
  /**
   * Called with the value of each control frame a peer sent (see {@link Transport.sendControl}).
   * The value comes straight off the wire: check its shape. If it throws, the error is logged.
   */
  readonly onControl?: (from: NodeId, value: unknown) => void;
  /**
   * A handshake (either direction, or an identify dial) announced a peer's addresses. The
   * transport keeps no table of its own for them: store them where `resolvePeer` finds them.
   */
  readonly onPeerIdentified?: (peer: PeerIdentity) => void;
}

/**
 * TCP transport between the servers of one cluster, carrying the messages of all Raft
 * groups. Each server sends only on connections it dialed (one per peer, opened lazily)
 * and receives only on connections it accepted. Sends are fire-and-forget: a message that
 * cannot be delivered is dropped and counted, and Raft retransmits. See docs/transport.md.
 */
export class Transport {
  readonly nodeId: NodeId;
  /**
   * Random, new at every start: tells this process's own identify dials (see
   * the hello's `instance`) from another server that claims this node id.
   */
  readonly instance = randomBytes(8).toString('hex');
  private readonly options: TransportOptions;
  private readonly limits: TransportLimits;
  private readonly logger: Logger;
  private readonly counters: TransportCounters = newCounters();
  private readonly table: Map<NodeId, PeerAddress>;
  private readonly outbound = new Map<NodeId, OutboundPeer>();
  private readonly inbound = new Set<InboundConnection>();
  /** The open inbound connection of each peer: a newer handshake replaces an older one. */
  private readonly inboundByNode = new Map<NodeId, InboundConnection>();
  private readonly dirty = new Set<OutboundPeer>();
  private flushHandle: NodeJS.Immediate | null = null;
  private server: Server | null = null;
  private boundAddress: PeerAddress | null = null;
  private advertisedHttp: PeerAddress | null = null;
  /** Identify dials in flight, so close() can end them and wait. */
  private readonly identifying = new Set<Promise<unknown>>();
  private readonly closing = new AbortController();
  private closed = false;
  private readonly peerContext: PeerContext;
  private readonly inboundContext: InboundContext;

  constructor(options: TransportOptions) {
    if (!isValidNodeId(options.nodeId))
      throw new TypeError(`invalid node id ${JSON.stringify(options.nodeId)}`);
    if (options.clusterId.length === 0 || options.clusterId.length > clusterIdLengthMax) {
      throw new TypeError(`clusterId must be 1-${clusterIdLengthMax} characters`);
    }
    this.nodeId = options.nodeId;
    this.options = options;
    this.limits = resolveTransportLimits(options.limits);
    this.logger = options.logger.child({ component: 'transport', node: options.nodeId });
    this.table = new Map();
    for (const [id, address] of options.peers ?? []) this.addPeer(id, address);

    const shared = {
      localNodeId: this.nodeId,
      instance: this.instance,
      clusterId: options.clusterId,
      limits: this.limits,
      logger: this.logger,
      counters: this.counters,
    };
    const identity = {
      localAddresses: () => this.localAddresses(),
      identified: (peer: PeerIdentity) => this.identified(peer),
    };
    this.peerContext = {
      ...shared,
      ...identity,
      coalesceHeartbeats: options.coalesceHeartbeats ?? true,
      lookup: (id) => this.lookup(id),
    };
    this.inboundContext = {
      ...shared,
      ...identity,
      isKnownPeer: (id) => this.lookup(id) !== undefined,
      opened: (connection) => this.onInboundOpened(connection),
      closed: (connection) => this.onInboundClosed(connection),
      deliver: (from, envelopes) => this.deliver(from, envelopes),
      deliverControl: (from, value) => this.deliverControl(from, value),
    };
  }

  /** Listen for peers. Resolves with the bound address (the real port when `listen.port` is 0). */
  async start(): Promise<PeerAddress> {
    if (this.server !== null || this.closed) throw new Error('start() may be called once, before close()');
    const server = createServer({
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.limits.keepAliveDelayMs,
    });
    this.server = server;
    server.maxConnections = this.limits.inboundConnectionsMax;
    server.on('connection', (socket: Socket) => this.accept(socket));
    server.on('drop', () => {
      this.logger.warn(
        { inboundConnectionsMax: this.limits.inboundConnectionsMax },
        `node ${this.nodeId} refused an inbound connection: inboundConnectionsMax reached`,
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.listen.host, port: this.options.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error: Error) => {
      this.logger.error({ err: error.message }, `node ${this.nodeId}: listener error: ${error.message}`);
    });
    const bound = server.address() as AddressInfo;
    this.boundAddress = { host: bound.address, port: bound.port };
    this.logger.info(this.boundAddress, `node ${this.nodeId} listening on ${bound.address}:${bound.port}`);
    return this.boundAddress;
  }

  /** The address bound by {@link start}, or null before it. */
  address(): PeerAddress | null {
    return this.boundAddress;
  }

  /**
   * Queue envelopes for `to`; they leave together at the end of this event-loop turn.
   * Never blocks and never throws for network reasons: what cannot be queued is dropped
   * and counted in {@link stats}.
   */
  send(to: NodeId, envelopes: readonly Envelope[]): void {
    if (to === this.nodeId)
      throw new Error(`node ${this.nodeId} cannot send to itself through the transport`);
    if (envelopes.length === 0) return;
    if (this.closed) {
      this.counters.messagesDroppedDisconnected += envelopes.length;
      return;
    }
    let peer = this.outbound.get(to);
    if (peer === undefined) {
      if (this.lookup(to) === undefined) {
        this.counters.messagesDroppedUnknownPeer += envelopes.length;
        return;
      }
      peer = new OutboundPeer(this.peerContext, to);
      this.outbound.set(to, peer);
    }
    for (const envelope of envelopes) peer.enqueue(envelope);
    this.dirty.add(peer);
    // setImmediate rather than a microtask: it runs after every I/O callback of this loop
    // iteration, so the messages produced by all the Readys handled in it share a frame.
    this.flushHandle ??= setImmediate(() => this.flushAll());
  }

  /**
   * Queue one control value (a MessagePack-encodable value, e.g. a membership request) for
   * `to`. It leaves before the Raft messages of the same turn, on the same connection, and
   * only if the peer's welcome offered control frames. Like {@link send} it never throws for
   * network reasons and gives no delivery guarantee: the caller retries on its own timeout.
   */
  sendControl(to: NodeId, value: unknown): void {
    if (to === this.nodeId)
      throw new Error(`node ${this.nodeId} cannot send to itself through the transport`);
    if (this.closed || this.lookup(to) === undefined) {
      this.counters.controlFramesDropped++;
      return;
    }
    let peer = this.outbound.get(to);
    if (peer === undefined) {
      peer = new OutboundPeer(this.peerContext, to);
      this.outbound.set(to, peer);
    }
    peer.enqueueControl(encodeControlFrame(value));
    this.dirty.add(peer);
    this.flushHandle ??= setImmediate(() => this.flushAll());
  }

  /**
   * Ask the server listening at `address` for its node id and addresses (an identify dial:
   * see docs/transport.md), bounded by `handshakeTimeoutMs`. What it announces is also
   * reported to `onPeerIdentified`. Rejects with an {@link IdentifyError}.
   */
  async identify(address: PeerAddress): Promise<IdentifiedPeer> {
    if (this.closed) throw new Error('the transport is closed');
    this.counters.identifies++;
    const pending = identifyPeer({
      address,
      localNodeId: this.nodeId,
      instance: this.instance,
      clusterId: this.options.clusterId,
      local: this.localAddresses(),
      timeoutMs: this.limits.handshakeTimeoutMs,
      signal: this.closing.signal,
    });
    this.identifying.add(pending);
    try {
      const peer = await pending;
      const { self, ...identity } = peer;
      if (!self) this.identified(identity);
      return peer;
    } catch (error) {
      this.counters.identifyFailures++;
      throw error;
    } finally {
      this.identifying.delete(pending);
    }
  }

  /** The HTTP address announced from now on in hellos and welcomes (null: none). */
  setAdvertisedHttp(address: PeerAddress | null): void {
    if (address !== null && !isValidPeerAddress(address)) throw new TypeError('invalid HTTP address');
    this.advertisedHttp = address;
  }

  /** Add or update a peer. A changed address takes effect at once: the old connection is dropped. */
  addPeer(nodeId: NodeId, address: PeerAddress): void {
    if (!isValidNodeId(nodeId)) throw new TypeError(`invalid node id ${JSON.stringify(nodeId)}`);
    if (!isValidPeerAddress(address)) throw new TypeError(`invalid address for node ${nodeId}`);
    if (nodeId === this.nodeId) return;
    const previous = this.table.get(nodeId);
    this.table.set(nodeId, { host: address.host, port: address.port });
    if (previous !== undefined && (previous.host !== address.host || previous.port !== address.port)) {
      this.outbound.get(nodeId)?.reset('the peer address changed');
    }
  }

  /** Forget a peer: its queue and connections go, and it may no longer connect (unless the resolver knows it). */
  removePeer(nodeId: NodeId): void {
    this.table.delete(nodeId);
    const peer = this.outbound.get(nodeId);
    if (peer !== undefined) {
      peer.close();
      this.outbound.delete(nodeId);
      this.dirty.delete(peer);
    }
    this.inboundByNode.get(nodeId)?.destroy('the peer was removed');
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const [id, peer] of this.outbound) peers.set(id, peer.stats());
    return { ...this.counters, inboundConnections: this.inbound.size, peers };
  }

  /** Close every connection and the listener; queued messages are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushHandle !== null) clearImmediate(this.flushHandle);
    this.flushHandle = null;
    for (const peer of this.outbound.values()) peer.close();
    this.dirty.clear();
    for (const connection of this.inbound) connection.destroy('the transport is closing');
    this.closing.abort();
    await Promise.allSettled([...this.identifying]);
    const server = this.server;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.logger.info(`node ${this.nodeId} transport closed`);
  }

  private localAddresses(): LocalAddresses {
    return { raft: this.options.advertiseRaft ?? this.boundAddress, http: this.advertisedHttp };
  }

  private identified(peer: PeerIdentity): void {
    if (peer.nodeId === this.nodeId || this.options.onPeerIdentified === undefined) return;
    try {
      this.options.onPeerIdentified(peer);
    } catch (error) {
      this.logger.error(
        { peer: peer.nodeId, err: errorMessage(error) },
        `onPeerIdentified threw for node ${peer.nodeId}: ${errorMessage(error)}`,
      );
    }
  }

  private deliverControl(from: NodeId, value: unknown): void {
    try {
      this.options.onControl?.(from, value);
    } catch (error) {
      this.logger.error(
        { peer: from, err: errorMessage(error) },
        `onControl threw on a control frame from node ${from}: ${errorMessage(error)}`,
      );
    }
  }

  private lookup(nodeId: NodeId): PeerAddress | undefined {
    if (nodeId === this.nodeId) return undefined;
    const known = this.table.get(nodeId);
    if (known !== undefined) return known;
    try {
      return this.options.resolvePeer?.(nodeId);
    } catch (error) {
      this.logger.error({ peer: nodeId, err: errorMessage(error) }, `resolvePeer(${nodeId}) threw`);
      return undefined;
    }
  }

  /**
   * Write everything queued now instead of at the end of the event-loop turn. The host
   * calls it before a blocking fsync, so a leader's AppendEntries reach the followers
   * while it writes its own copy (Raft thesis §10.2.1).
   */
  flush(): void {
    if (this.flushHandle !== null) clearImmediate(this.flushHandle);
    this.flushAll();
  }

  private flushAll(): void {
    this.flushHandle = null;
    const peers = [...this.dirty];
    this.dirty.clear();
    for (const peer of peers) peer.flush();
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.inbound.add(new InboundConnection(this.inboundContext, socket));
  }

  private onInboundOpened(connection: InboundConnection): void {
    const id = connection.remoteNodeId;
    if (id === null) return;
    const previous = this.inboundByNode.get(id);
    this.inboundByNode.set(id, connection);
    // The peer redialed: its old connection is dead or half-open (it sends on one only).
    previous?.destroy(`node ${id} opened a newer connection from ${connection.remoteAddress}`);
  }

  private onInboundClosed(connection: InboundConnection): void {
    this.inbound.delete(connection);
    const id = connection.remoteNodeId;
    if (id !== null && this.inboundByNode.get(id) === connection) this.inboundByNode.delete(id);
  }

  private deliver(from: NodeId, envelopes: readonly Envelope[]): void {
    deliverMessages({ onMessages: this.options.onMessages, logger: this.logger, from, envelopes });
  }
}

/**
 * Hands messages to the host. A host error is logged and the connection kept, except a
 * broken protocol invariant (e.g. a leader's commit past this server's log, after its data
 * dir was lost): it leaves the core in a state nobody may trust, so it propagates and stops
 * the process rather than being logged and ignored.
 */
export function deliverMessages(options: {
  onMessages: (from: NodeId, envelopes: readonly Envelope[]) => void;
  logger: Pick<Logger, 'error'>;
  from: NodeId;
  envelopes: readonly Envelope[];
}): void {
  const { from, envelopes } = options;
  try {
    options.onMessages(from, envelopes);
  } catch (error) {
    if (error instanceof RaftInvariantError) throw error;
    options.logger.error(
      { peer: from, err: errorMessage(error) },
      `onMessages threw on ${envelopes.length} messages from node ${from}: ${errorMessage(error)}`,
    );
  }
}
