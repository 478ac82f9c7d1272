/**
 * The typed failures of the storage layer. Each carries what an operator needs to act:
 * which file, which byte offset, which limit. Callers match on the class and `code`.
 */

/** A file operation failed. `code` is the errno name when the platform gave one (EIO, ENOSPC...). */
export class DiskError extends Error {
  override readonly name: string = 'DiskError';
  readonly code: string;
  readonly op: string;
  readonly path: string;

  constructor(options: { op: string; path: string; code: string; message?: string; cause?: unknown }) {
    super(options.message ?? `${options.op} ${options.path} failed: ${options.code}`, {
      cause: options.cause,
    });
    this.code = options.code;
    this.op = options.op;
    this.path = options.path;
  }
}

/**
 * fsync or fdatasync failed. After this the kernel may have dropped the dirty pages and
 * marked them clean, so a retry that "succeeds" proves nothing: whoever sees this must
 * stop using the file and recover from what is on disk.
 */
export class DiskSyncError extends DiskError {
  override readonly name: string = 'DiskSyncError';
}

export const WalCorruptionCode = {
  /** The metadata file is missing although segments exist, or fails its checksum. */
  MetaInvalid: 'META_INVALID',
  /** A segment between the first live one and the last is missing. */
  SegmentMissing: 'SEGMENT_MISSING',
  /** A segment header is short, fails its checksum or names the wrong sequence number. */
  SegmentHeaderInvalid: 'SEGMENT_HEADER_INVALID',
  /** A frame header is malformed, or its length runs past the end of a sealed segment. */
  FrameHeaderInvalid: 'FRAME_HEADER_INVALID',
  /** A frame's payload fails its checksum outside the tail of the last segment. */
  FrameChecksumMismatch: 'FRAME_CHECKSUM_MISMATCH',
  /** A valid frame carries an unexpected sequence number: frames were lost or spliced. */
  FrameSequenceGap: 'FRAME_SEQUENCE_GAP',
  /** Damage in the last segment is followed by a valid frame, so it is not a torn write. */
  DamageBeforeValidFrame: 'DAMAGE_BEFORE_VALID_FRAME',
  /** A frame passed its checksum but its records do not parse: a bug, not bit rot. */
  RecordMalformed: 'RECORD_MALFORMED',
  /** Records parse but do not replay (entries leave a gap): a bug or a splice. */
  ReplayInconsistent: 'REPLAY_INCONSISTENT',
} as const;
export type WalCorruptionCode = (typeof WalCorruptionCode)[keyof typeof WalCorruptionCode];

/** Recovery found damage it must not repair: data an fsync acknowledged would be lost. */
export class WalCorruptionError extends Error {
  override readonly name = 'WalCorruptionError';
  readonly code: WalCorruptionCode;
  /** The file's name within the WAL directory. */
  readonly file: string;
  readonly offset: number;
  /** What is wrong there, without the code, file and offset. */
  readonly detail: string;

  constructor(options: { code: WalCorruptionCode; file: string; offset: number; detail: string }) {
    super(`WAL corruption (${options.code}) in ${options.file} at byte ${options.offset}: ${options.detail}`);
    this.code = options.code;
    this.file = options.file;
    this.offset = options.offset;
    this.detail = options.detail;
  }
}

/**
 * The WAL hit an I/O error earlier and refuses further use: whether that write reached the
 * disk is unknown, so the only safe continuation is a restart that recovers from disk.
 */
export class WalFailedError extends Error {
  override readonly name = 'WalFailedError';

  constructor(options: { cause: unknown }) {
    super('the WAL failed on an earlier I/O error and refuses further use; restart to recover', {
      cause: options.cause,
    });
  }
}

export class WalClosedError extends Error {
  override readonly name = 'WalClosedError';

  constructor() {
    super('the WAL is closed');
  }
}

/** A write exceeds a configured limit; nothing of it was written. */
export class StorageLimitError extends Error {
  override readonly name = 'StorageLimitError';
  readonly limit: string;
  readonly valueBytes: number;
  readonly maxBytes: number;

  constructor(options: { limit: string; valueBytes: number; maxBytes: number; what: string }) {
    super(`${options.what} is ${options.valueBytes} bytes, over ${options.limit} = ${options.maxBytes}`);
    this.limit = options.limit;
    this.valueBytes = options.valueBytes;
    this.maxBytes = options.maxBytes;
  }
}

/** A storage limit or option is missing or out of range. */
export class StorageConfigError extends Error {
  override readonly name = 'StorageConfigError';
}

export const SnapshotCorruptionCode = {
  HeaderInvalid: 'SNAPSHOT_HEADER_INVALID',
  /** The header describes a different snapshot than the file name does. */
  NameMismatch: 'SNAPSHOT_NAME_MISMATCH',
  /** The file is shorter or longer than its header says. */
  LengthMismatch: 'SNAPSHOT_LENGTH_MISMATCH',
  DataChecksumMismatch: 'SNAPSHOT_DATA_CHECKSUM_MISMATCH',
} as const;
export type SnapshotCorruptionCode = (typeof SnapshotCorruptionCode)[keyof typeof SnapshotCorruptionCode];

export class SnapshotCorruptionError extends Error {
  override readonly name = 'SnapshotCorruptionError';
  readonly code: SnapshotCorruptionCode;
  readonly file: string;
  readonly offset: number;

  constructor(options: { code: SnapshotCorruptionCode; file: string; offset: number; detail: string }) {
    super(
      `snapshot corruption (${options.code}) in ${options.file} at byte ${options.offset}: ${options.detail}`,
    );
    this.code = options.code;
    this.file = options.file;
    this.offset = options.offset;
  }
}

/**
 * A group's snapshot, which the WAL says its log starts from, cannot be loaded, and no older
 * snapshot can stand in for it because the WAL no longer holds the entries after that one.
 */
export class SnapshotUnavailableError extends Error {
  override readonly name = 'SnapshotUnavailableError';
  readonly groupId: number;
  readonly index: number;

  constructor(options: { groupId: number; index: number; detail: string }) {
    super(`group ${options.groupId}: snapshot at index ${options.index} is unavailable: ${options.detail}`);
    this.groupId = options.groupId;
    this.index = options.index;
  }
}
