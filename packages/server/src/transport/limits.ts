/** Every limit the transport enforces, each with its unit last. */
export interface TransportLimits {
  /**
   * The largest frame on the wire, its 4-byte length prefix included. It must exceed the
   * Raft core's `messageBytesMax` plus one proposal (an AppendEntries always carries its
   * first entry), or such messages are dropped as oversized.
   */
  readonly frameBytesMax: number;
  /** The most messages waiting to be sent to one peer; more are dropped. */
  readonly sendQueueMessagesMax: number;
  /** The most encoded bytes waiting to be sent to one peer; more are dropped. */
  readonly sendQueueBytesMax: number;
  /** The first reconnect delay after a failure; each further failure doubles it. */
  readonly reconnectDelayMinMs: number;
  /** The reconnect delay stops doubling here. */
  readonly reconnectDelayMaxMs: number;
  /** A connection must finish its handshake (dial included) within this time or is closed. */
  readonly handshakeTimeoutMs: number;
  /** Idle time before TCP keep-alive probes start, so a half-open connection is noticed. */
  readonly keepAliveDelayMs: number;
  /** The most inbound connections at once, handshaking or open. */
  readonly inboundConnectionsMax: number;
  /** The largest control frame, prefix included (and never more than `frameBytesMax`). */
  readonly controlFrameBytesMax: number;
  /** The most control frames waiting to be sent to one peer; more are dropped. */
  readonly controlQueueFramesMax: number;
}

export const defaultTransportLimits: TransportLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  sendQueueMessagesMax: 8192,
  sendQueueBytesMax: 64 * 1024 * 1024,
  reconnectDelayMinMs: 100,
  reconnectDelayMaxMs: 5000,
  handshakeTimeoutMs: 5000,
  keepAliveDelayMs: 10_000,
  inboundConnectionsMax: 256,
  controlFrameBytesMax: 1024 * 1024,
  controlQueueFramesMax: 64,
};

/**
 * Handshake frames are tiny; until a connection has identified itself it may not make us
 * buffer more than this, whatever `frameBytesMax` is.
 */
export const handshakeFrameBytesMax = 4096;

export function resolveTransportLimits(input: Partial<TransportLimits> | undefined): TransportLimits {
  const limits: TransportLimits = { ...defaultTransportLimits, ...input };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`transport limit ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (limits.reconnectDelayMinMs > limits.reconnectDelayMaxMs) {
    throw new RangeError('reconnectDelayMinMs must not exceed reconnectDelayMaxMs');
  }
  if (limits.frameBytesMax < handshakeFrameBytesMax) {
    throw new RangeError(`frameBytesMax must be at least ${handshakeFrameBytesMax}`);
  }
  // A frame length is a uint32 on the wire.
  if (limits.frameBytesMax > 0xffff_ffff) throw new RangeError('frameBytesMax must fit in 32 bits');
  return limits;
}
