export type { KvEntry, SessionEntry } from '../fsm/types.js';
export type { ArchivePart, PartRows } from './contents.js';
export {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  type GroupSource,
  metaBytesMax,
  partFileName,
  sha256Hex,
  sumsBytesMax,
} from './format.js';
export { type ReadArchiveOptions, readArchiveStream } from './read.js';
export { archiveStream } from './write.js';
