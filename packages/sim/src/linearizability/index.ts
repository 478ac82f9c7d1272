export { type CheckOptions, type CheckResult, checkLinearizable } from './check.js';
export {
  HistoryRecorder,
  type HistoryRecorderOptions,
  isUnknownOutcome,
  type Operation,
  validateOperation,
} from './history.js';
export {
  type KvCasOutput,
  type KvGetOutput,
  type KvInput,
  type KvOperation,
  type KvOutput,
  type KvPutOutput,
  type KvState,
  kvModel,
} from './kv-model.js';
export type { Model, StepResult } from './model.js';
export {
  type CounterInput,
  type CounterOutput,
  counterModel,
  type ElectionInput,
  type ElectionModelState,
  type ElectionOutput,
  electionModel,
  type ListInput,
  type ListOutput,
  type LockInput,
  type LockOutput,
  type LockState,
  listModel,
  lockModel,
  type SetInput,
  type SetOutput,
  setModel,
} from './primitive-models.js';
