export {
  allVerbs,
  commandVersion,
  decodeCommand,
  encodeCommand,
  type FsmCommand,
  type FsmResult,
  writeVerbs,
} from './commands.js';
export { ConclaveFsm, defaultFsmLimits, type FsmLimits, type SnapshotParts } from './fsm.js';
export { PartsDigest, type PartsDigestState } from './parts-digest.js';
export { argsProblem, textProblem } from './primitives/args.js';
export {
  commandProblem,
  type EventsRead,
  type PrimitiveCommand,
  type PrimitiveEvent,
  type PrimitiveOutcome,
  type PrimitiveRead,
  type PrimitiveReadResult,
  type TtlRow,
} from './primitives/engine.js';
export { kindMachines } from './primitives/registry.js';
export { primitiveRowKey } from './primitives/rows.js';
export type { FsmError } from './quota.js';
export type { StagedRestoreView } from './restore.js';
export {
  snapshotChunkBytesTarget,
  snapshotChunkRows,
  snapshotPartBytesMax,
  snapshotVersion,
} from './snapshot-codec.js';
export { groupSessionsMax, groupStateBytesMaxDefault, snapshotRowBytesMax } from './snapshot-limits.js';
export {
  type PartsHeader,
  type PartsSummary,
  SnapshotPartError,
  SnapshotPartsReader,
  snapshotReferencedSessionsMax,
} from './snapshot-parts.js';
export { kvRowBytes, kvRowBytesOf } from './snapshot-rows.js';
export { kvsTable, sessionsTable } from './tables.js';
export type { FsmQueries, FsmView } from './view.js';
