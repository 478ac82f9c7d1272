/**
 * The coordination SDK: `connect()` to a cluster, then typed handles for its primitives
 * (map, set, counter, value, lock, election, semaphore) over one lazily opened, renewed
 * session. Writes apply exactly once by default (see WriteCallOptions).
 */
export type { ElectionTerm, LockHolder } from '@conclave/protocol';
export type { ReadCallOptions, WriteCallOptions } from './caller.js';
export { bytesCodec, type Codec, jsonCodec, textCodec } from './codec.js';
export { Conclave, type ConnectOptions, connect, connectDefaults } from './connect.js';
export { ConclaveCounter } from './counter.js';
export { Candidacy, ConclaveElection } from './election.js';
export { Hold, type HoldEvents } from './hold.js';
export { type AcquireOptions, ConclaveLock, LockHandle } from './lock.js';
export { ConclaveMap, type MapEntry } from './map.js';
export type { PageOptions } from './pages.js';
export {
  ConclaveSemaphore,
  PermitsHandle,
  type PermitsOptions,
  type SemaphoreState,
} from './semaphore.js';
export { ConclaveSession, Lease, type SessionEvents } from './session.js';
export { ConclaveSet } from './set.js';
export { ConclaveValue, type ValueWriteOptions, type Written } from './value.js';
export type { Versioned } from './wire.js';
