/**
 * `@conclave/storage`: durable storage for the multi-Raft server. A segmented WAL shared
 * by every group (group commit: one write and one fdatasync per batch), a snapshot store, and
 * the Disk interface both run on (NodeDisk for real, SimDisk for tests and the simulator).
 * See docs/storage.md.
 */
export { readWholeFile, writeFileAtomic } from './atomic-file.js';
export { crcSliceBytesMax } from './background-write.js';
export { crc32, crc32IsNative, crc32Table } from './crc32.js';
export type { Disk, DiskFile, OpenMode } from './disk.js';
export { baseName, dirName, joinPath, NodeDisk } from './disk.js';
export type { DurableStorageOptions, SnapshotRecovery } from './durable-storage.js';
export { DurableStorage } from './durable-storage.js';
export {
  DiskError,
  DiskSyncError,
  SnapshotCorruptionCode,
  SnapshotCorruptionError,
  SnapshotUnavailableError,
  StorageConfigError,
  StorageLimitError,
  WalClosedError,
  WalCorruptionCode,
  WalCorruptionError,
  WalFailedError,
} from './errors.js';
export { GroupLog } from './group-log.js';
export type { StorageLimits } from './limits.js';
export { defaultStorageLimits, resolveStorageLimits } from './limits.js';
export type { CrashOptions, CrashReport, RandomSource } from './sim-disk.js';
export { SimDisk, SimulatedCrashError } from './sim-disk.js';
export type { StoredSnapshot } from './snapshot-store.js';
export { SnapshotStore, snapshotFileName } from './snapshot-store.js';
export type { SnapshotMode, WalRecord } from './wal/format.js';
export { segmentFileName } from './wal/format.js';
export type { GroupWrite, WalOptions, WalRecoveryReport, WalStats } from './wal/wal.js';
export { Wal } from './wal/wal.js';
