import type { NodeId } from '@conclave/raft';

/** Where an outbound peer connection stands; see docs/transport.md for the transitions. */
export type PeerState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed';

export interface PeerStats {
  readonly state: PeerState;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Bytes the socket holds that the kernel has not taken yet. */
  readonly socketBufferedBytes: number;
  /** True while the socket is over its high-water mark and flushing waits for 'drain'. */
  readonly blocked: boolean;
  readonly framesSent: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly reconnects: number;
}

/** Counters since the transport was created. Frames and bytes include handshake frames. */
export interface TransportCounters {
  framesSent: number;
  bytesSent: number;
  messagesSent: number;
  framesReceived: number;
  bytesReceived: number;
  messagesReceived: number;
  /** The peer's send queue was at `sendQueueMessagesMax` or `sendQueueBytesMax`. */
  messagesDroppedQueueFull: number;
  /** The message alone would not fit in a frame of `frameBytesMax`. */
  messagesDroppedOversized: number;
  /** Queued for a connection that failed or was lost, or sent after close(). */
  messagesDroppedDisconnected: number;
  /** Addressed to a node with no known address. */
  messagesDroppedUnknownPeer: number;
  /** Outbound connection attempts. */
  dials: number;
  /** Attempts that ended before a successful handshake (refused, timed out, rejected). */
  dialFailures: number;
  /** Outbound handshakes that succeeded. */
  connectionsEstablished: number;
  /** Successful outbound handshakes to a peer this transport had been connected to before. */
  reconnects: number;
  /** Handshakes this node refused (wrong cluster, version, node id...). */
  inboundHandshakesRejected: number;
  /** Handshakes a peer refused. */
  outboundHandshakesRejected: number;
  /** Connections closed for a framing, decoding, shape or addressing violation, or a timeout. */
  protocolErrors: number;
  /** Control frames written to a socket, and received and handed to `onControl`. */
  controlFramesSent: number;
  controlFramesReceived: number;
  /**
   * Control frames not sent: the queue was full, the frame too large, the connection failed
   * or the peer's welcome did not offer control frames.
   */
  controlFramesDropped: number;
  /** Identify dials (to a bare address) started, and those that failed. */
  identifies: number;
  identifyFailures: number;
}

export interface TransportStats extends Readonly<TransportCounters> {
  /** Inbound connections now open or handshaking. */
  readonly inboundConnections: number;
  readonly peers: ReadonlyMap<NodeId, PeerStats>;
}

export function newCounters(): TransportCounters {
  return {
    framesSent: 0,
    bytesSent: 0,
    messagesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    messagesDroppedQueueFull: 0,
    messagesDroppedOversized: 0,
    messagesDroppedDisconnected: 0,
    messagesDroppedUnknownPeer: 0,
    dials: 0,
    dialFailures: 0,
    connectionsEstablished: 0,
    reconnects: 0,
    inboundHandshakesRejected: 0,
    outboundHandshakesRejected: 0,
    protocolErrors: 0,
    controlFramesSent: 0,
    controlFramesReceived: 0,
    controlFramesDropped: 0,
    identifies: 0,
    identifyFailures: 0,
  };
}
