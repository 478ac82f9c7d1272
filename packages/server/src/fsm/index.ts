export {
  allVerbs,
  commandVersion,
  decodeCommand,
  encodeCommand,
  type FsmCommand,
  type FsmResult,
  writeVerbs,
} from './commands.js';
export { ConclaveFsm, defaultFsmLimits, type FsmLimits } from './fsm.js';
export { snapshotVersion } from './snapshot-codec.js';
export { kvsTable, sessionsTable } from './tables.js';
export type { FsmQueries, FsmView } from './view.js';
