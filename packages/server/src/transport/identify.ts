import { connect, type Socket } from 'node:net';
import type { NodeId } from '@conclave/raft';
import { dialableAddress, formatAddress } from './addresses.js';
import {
  decodeBody,
  encodeHello,
  FrameDecoder,
  FrameError,
  FrameType,
  parseReject,
  parseWelcome,
  protocolVersion,
  type RejectReason,
} from './codec.js';
import { handshakeFrameBytesMax } from './limits.js';
import { errorMessage } from './shape.js';
import type { LocalAddresses, PeerAddress, PeerIdentity } from './types.js';

/** An identify dial failed: nothing answered, or the acceptor refused (`reason` says why). */
export class IdentifyError extends Error {
  override readonly name = 'IdentifyError';
  readonly reason: RejectReason | 'unreachable' | 'protocol';

  constructor(options: { message: string; reason: IdentifyError['reason'] }) {
    super(options.message);
    this.reason = options.reason;
  }
}

/**
 * Ask whoever listens at `address` who it is: a hello whose `to` is empty, answered by a
 * welcome naming the acceptor and its addresses, after which both sides close. Used to
 * reach a server known only by address (`--join host:port`); the Raft traffic that follows
 * goes over ordinary connections, keyed by the id learned here.
 */
/** What an identify dial learns: who answered, and whether it was this very process. */
export interface IdentifiedPeer extends PeerIdentity {
  /** The answer carried our own process's instance id: we dialed ourselves. */
  readonly self: boolean;
}

export function identifyPeer(options: {
  address: PeerAddress;
  localNodeId: NodeId;
  /** This process's random id, sent in the hello; a welcome that echoes it is our own. */
  instance: string;
  clusterId: string;
  local: LocalAddresses;
  timeoutMs: number;
  /** Aborting fails the dial at once (the transport is closing). */
  signal?: AbortSignal;
}): Promise<IdentifiedPeer> {
  const { address, timeoutMs } = options;
  const where = formatAddress(address);
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket: Socket = connect({ host: address.host, port: address.port });
    const decoder = new FrameDecoder({ frameBytesMax: handshakeFrameBytesMax });
    const finish = (outcome: IdentifiedPeer | IdentifyError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (outcome instanceof IdentifyError) reject(outcome);
      else resolve(outcome);
    };
    const fail = (reason: IdentifyError['reason'], detail: string): void =>
      finish(new IdentifyError({ reason, message: `identifying the server at ${where} failed: ${detail}` }));
    const timer = setTimeout(() => fail('unreachable', `no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    const onAbort = (): void => fail('unreachable', 'the transport closed');
    if (options.signal?.aborted === true) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      const { local } = options;
      socket.write(
        encodeHello({
          version: protocolVersion,
          clusterId: options.clusterId,
          nodeId: options.localNodeId,
          to: null,
          instance: options.instance,
          ...(local.raft === null ? {} : { raft: local.raft }),
          ...(local.http === null ? {} : { http: local.http }),
        }),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      try {
        const frame = decoder.next();
        if (frame === null) return;
        const body = decodeBody(frame.body);
        if (frame.type === FrameType.Welcome) {
          const welcome = parseWelcome(body);
          // Without an announced address, the one we dialed is where it listens.
          finish({
            nodeId: welcome.nodeId,
            raft: dialableAddress(welcome.raft ?? address, address.host),
            http: welcome.http === undefined ? null : dialableAddress(welcome.http, address.host),
            self: welcome.nodeId === options.localNodeId && welcome.instance === options.instance,
          });
        } else if (frame.type === FrameType.Reject) {
          const refusal = parseReject(body);
          fail(refusal.reason, `node ${refusal.nodeId} refused (${refusal.reason}): ${refusal.detail}`);
        } else {
          fail('protocol', `expected a welcome or reject frame, got frame type ${frame.type}`);
        }
      } catch (error) {
        const kind = error instanceof FrameError ? 'a bad frame' : 'an undecodable answer';
        fail('protocol', `${kind}: ${errorMessage(error)}`);
      }
    });
    socket.on('error', (error: Error) => fail('unreachable', error.message));
    socket.on('close', () => fail('unreachable', 'the connection closed before an answer'));
  });
}
