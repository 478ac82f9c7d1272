export {
  type ArchiveGroupMeta,
  type ArchiveMeta,
  archiveFormatVersion,
  type GroupCapture,
  groupFileName,
  sha256Hex,
} from './format.js';
export { type Archive, type ArchiveGroup, readArchive } from './read.js';
export { checkGroupState, type GroupState, snapshotKeyCount } from './state.js';
export { archiveStream, archiveTarChunks } from './write.js';
