/**
 * @conclave/sim: the deterministic simulated world that runs the production Raft core,
 * and the checkers that watch it. Scripts and suites use `Cluster`; the pieces below it
 * are exported for tests of the world itself.
 */

export type { CliOptions } from './args.js';
export { parseCli, parseSeeds } from './args.js';
export type { AppliedView, LogView } from './checkers.js';
export { SafetyCheck, SafetyCheckers, SafetyViolation } from './checkers.js';
export type {
  ApplyEvent,
  ClusterOptions,
  ClusterStats,
  ConfChangeResult,
  KvCommandInput,
  Members,
  MembershipChange,
  ProposeResult,
  ReadEvent,
  StorageMode,
} from './cluster.js';
export { Cluster, clusterDefaults, membershipShows } from './cluster.js';
export type { CrashOutcome, DiskOptions, NodeStore, PendingWrite, WriteRecord } from './disk.js';
export { defaultDiskOptions, SimDisk } from './disk.js';
export { EventQueue, type Scheduled } from './event-queue.js';
export type { FaultScheduleOptions } from './faults.js';
export {
  allFaultKinds,
  allWalFaultKinds,
  defaultFaultScheduleOptions,
  FaultKind,
  FaultSchedule,
  parseFaultKinds,
  walOnlyFaultKinds,
} from './faults.js';
export type { KvApplyOutcome, KvCommand, KvResult, RequestId } from './kv.js';
export { decodeCommand, encodeCommand, formatRequestId, KvStateMachine, sameRequest } from './kv.js';
export type {
  CheckOptions,
  CheckResult,
  CounterInput,
  CounterOutput,
  ElectionInput,
  ElectionOutput,
  KvInput,
  KvOperation,
  KvOutput,
  ListInput,
  ListOutput,
  LockInput,
  LockOutput,
  Model,
  Operation,
  SetInput,
  SetOutput,
} from './linearizability/index.js';
export {
  checkLinearizable,
  counterModel,
  electionModel,
  HistoryRecorder,
  kvModel,
  listModel,
  lockModel,
  setModel,
} from './linearizability/index.js';
export type { MembershipChurnOptions } from './membership.js';
export { defaultMembershipChurnOptions, MembershipChurn } from './membership.js';
export type {
  Delivery,
  DropReason,
  NetworkConditions,
  NetworkOptions,
  NetworkStats,
  SendResult,
} from './network.js';
export {
  defaultNetworkLimits,
  longReorderingConditions,
  messageSizeBytes,
  Network,
  reliableConditions,
  unreliableConditions,
} from './network.js';
export type { AppliedRecord, ReadRequest } from './node.js';
export { SimNode } from './node.js';
export { Rng } from './rng.js';
export type { RunFailure, RunOptions, RunResult } from './run.js';
export { runDefaults, runSeed } from './run.js';
export { Trace, type TraceLine } from './trace.js';
export { isStorageFailure, isStorageRefusal, WalDisk } from './wal-disk.js';
export type { ReadPath, WorkloadOptions, WorkloadStats } from './workload.js';
export { defaultWorkloadOptions, Workload } from './workload.js';
