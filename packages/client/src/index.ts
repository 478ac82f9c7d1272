export type * from './autopilot.js';
export { AutopilotClient } from './autopilot.js';
export type { CallOptions } from './call.js';
export {
  baseUrlOf,
  blockingWaitMaxMs,
  type ClientOptions,
  ConclaveClient,
  kvPath,
} from './client.js';
export { ConclaveClientError } from './errors.js';
export { defaultHttpLimits, type HttpLimits, serverAddressesMax } from './http.js';
export type * from './operator.js';
export type { PrimitiveAnswer, PrimitiveCall } from './primitive.js';
export * from './sdk/index.js';
export { type RestoreAnswer, SnapshotClient, type SnapshotTransferLimits } from './snapshot.js';
export type * from './types.js';
