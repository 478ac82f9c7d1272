export type { StoreReader } from './reader.js';
export {
  type AnyTable,
  compoundIndex,
  compoundKey,
  defineTable,
  fieldIndex,
  type IndexSchema,
  primaryIndex,
  type TableSchema,
} from './schema.js';
export { type RestoreWriter, StateStore, type WatchTarget, WriteTxn } from './store.js';
export type { WatchLimits } from './watches.js';
