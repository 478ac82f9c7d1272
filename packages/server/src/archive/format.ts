import { createHash } from 'node:crypto';
import { ConclaveError } from '../errors.js';

/** The archive layout's version, in meta.json; a reader refuses any other. */
export const archiveFormatVersion = 1;

export const metaFileName = 'meta.json';
export const sumsFileName = 'SHA256SUMS';

/** One group's entry in meta.json. */
export interface ArchiveGroupMeta {
  readonly groupId: number;
  /** The applied index the group's state was captured at. */
  readonly index: number;
  /** The term of the server that captured it, when it did. */
  readonly term: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  /** Length and SHA-256 (hex) of the group's file. */
  readonly bytes: number;
  readonly sha256: string;
  /** KV entries in the group's state. */
  readonly keys: number;
}

export interface ArchiveMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  /** ISO 8601, UTC. */
  readonly createdAt: string;
  /** Sorted by groupId, one per group of the cluster: 0, 1, ... */
  readonly groups: readonly ArchiveGroupMeta[];
}

/** One group's captured state, as the archive writer takes it. */
export interface GroupCapture {
  readonly groupId: number;
  readonly index: number;
  readonly term: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly keys: number;
  /** The FSM snapshot bytes (fsm/snapshot-codec.ts) at `index`. */
  readonly data: Uint8Array;
}

export function groupFileName(groupId: number): string {
  return `group-${groupId}.snap`;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function archiveInvalid(message: string): ConclaveError {
  return new ConclaveError({ code: 'SNAPSHOT_ARCHIVE_INVALID', message });
}
