/**
 * The coordination SDK: `connect()` to a cluster, then typed handles for its primitives
 * (map, set, multimap, list, indexed map, counter, value, lock, election, semaphore) over one lazily opened, renewed
 * session. Writes apply exactly once by default (see WriteCallOptions).
 */
export type { ElectionTerm, LockHolder } from '@conclave/protocol';
export type { ReadCallOptions, WriteCallOptions } from './caller.js';
export { bytesCodec, type Codec, jsonCodec, textCodec } from './codec.js';
export { Conclave, type ConnectOptions, connect, connectDefaults } from './connect.js';
export { ConclaveCounter } from './counter.js';
export { Candidacy, ConclaveElection } from './election.js';
export {
  type EventsOptions,
  eventsWaitMs,
  type GroupEventsOptions,
  type GroupStreamItem,
  type StreamItem,
} from './events.js';
export { Hold, type HoldEvents } from './hold.js';
export {
  ConclaveIndexedMap,
  type IndexedEntry,
  type IndexedPageOptions,
  type IndexedTarget,
} from './indexed-map.js';
export { ConclaveList, type ListItems, type ListPageOptions, type ListWriteOptions } from './list.js';
export { type AcquireOptions, ConclaveLock, LockHandle } from './lock.js';
export {
  ConclaveMap,
  type MapChange,
  type MapEntry,
  MapTransaction,
  TransactionError,
  type TransactionResult,
  type TransactionStepResult,
} from './map.js';
export {
  ConclaveMultimap,
  type MultimapChange,
  type MultimapEntry,
  type MultimapValues,
  type MultimapWriteOptions,
} from './multimap.js';
export type { PageOptions } from './pages.js';
export {
  ConclaveSemaphore,
  PermitsHandle,
  type PermitsOptions,
  type SemaphoreState,
} from './semaphore.js';
export { ConclaveSession, Lease, type SessionEvents } from './session.js';
export { ConclaveSet, type SetChange } from './set.js';
export { ConclaveValue, type ValueWriteOptions, type Written } from './value.js';
export type { Versioned } from './wire.js';
