export {
  confChangeContextBytesMax,
  decodeConfChange,
  encodeConfChange,
  isValidNodeId,
  nodeIdBytesMax,
} from './confchange/confchange.js';
export type { RaftConfig, RaftConfigInput, RaftLimits } from './config.js';
export { defaultLimits, resolveConfig } from './config.js';
export { assert, RaftError, RaftErrorCode, RaftInvariantError } from './errors.js';
export type { Prng } from './prng.js';
export { createPrng } from './prng.js';
export type { NodeReady, ProgressStatus, RaftStatus } from './rawnode.js';
export { RawNode } from './rawnode.js';
export type { ProposeResult, RaftResult, ReadMode } from './roles/leader.js';
export { entrySizeBytes } from './size.js';
export type { LogStorage } from './storage.js';
export { MemoryStorage } from './storage.js';
export * from './types.js';
