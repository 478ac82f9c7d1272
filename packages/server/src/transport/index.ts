export { dialableAddress, formatAddress } from './addresses.js';
export {
  FrameType,
  protocolVersion,
  RejectReason,
  supportedProtocolVersions,
} from './codec.js';
export type { CoalescedHeartbeats, HeartbeatBundle } from './heartbeats.js';
export { coalesceHeartbeats, expandHeartbeats } from './heartbeats.js';
export { type IdentifiedPeer, IdentifyError } from './identify.js';
export type { TransportLimits } from './limits.js';
export { defaultTransportLimits } from './limits.js';
export type { PeerState, PeerStats, TransportCounters, TransportStats } from './stats.js';
export type { TransportOptions } from './transport.js';
export { Transport } from './transport.js';
export type { Envelope, LocalAddresses, PeerAddress, PeerIdentity, PeerResolver } from './types.js';
