import { assert, defaultLimits as raftLimits } from '@conclave/raft';
import type { FsmCommand } from './commands.js';
import { groupStateBytesMaxDefault, snapshotPartBytesMax } from './snapshot-limits.js';

export type RestoreCommand = Extract<
  FsmCommand,
  { type: 'restore-begin' | 'restore-chunk' | 'restore-batch' | 'restore-commit' | 'restore-abort' }
>;
export type LegacyRestoreCommand = Extract<FsmCommand, { type: 'restore-legacy' }>;

/** Limits a restore's commands obey; validate-call.ts refuses anything outside them first. */
/** A chunk (and each part of a batch) is exactly one snapshot part, within a Raft proposal (1 MiB). */
export const restoreChunkBytesMax = snapshotPartBytesMax;
/**
 * Bytes of parts one group's restore may stage: the group's state bound, one limit for both,
 * since the staged rows are carried in every Raft snapshot beside the live ones until the
 * commit (fsm/quota.ts). The FSM applies its own groupStateBytesMax; this is the default's.
 */
export const restoreGroupBytesMax = groupStateBytesMaxDefault;
export const restoreIdBytesMax = 128;
/**
 * Parts one restore-batch carries at most. Parts are rarely small (a chunk closes at
 * 256 KiB of rows), so a batch holds a few; the count bounds the per-part framing and the
 * work of one entry's apply when a group's parts are tiny.
 */
export const restoreBatchPartsMax = 64;
/**
 * Bytes of parts one restore-batch carries at most: one Raft proposal (1 MiB) less room for
 * the command's framing (restoreBatchFramingBytesMax). Always at least one part's bound, so
 * a single part of any allowed size makes a batch on its own.
 */
export const restoreBatchBytesMax = raftLimits.proposalBytesMax - 8 * 1024;
/**
 * The most an encoded restore-batch adds to its parts' bytes: the version and type, a
 * restoreId of up to restoreIdBytesMax characters (up to 3 bytes each in UTF-8), the seq,
 * the array header and a 5-byte bin header per part, with room to spare.
 */
export const restoreBatchFramingBytesMax = 1024 + 3 * restoreIdBytesMax + 8 * restoreBatchPartsMax;
assert(
  restoreBatchBytesMax >= restoreChunkBytesMax &&
    restoreBatchBytesMax + restoreBatchFramingBytesMax <= raftLimits.proposalBytesMax,
  'a restore-batch holds any one part and stays within a Raft proposal',
);
const digestPattern = /^[0-9a-f]{64}$/u;

/** The wire tuple after the version: [type, ...fields], fixed shapes. */
export function restoreToWire(command: RestoreCommand): unknown[] {
  const wire = wireOf(command);
  checkRestoreWire(wire);
  // Checked when proposed only: an entry already in a log may name a size a former bound allowed.
  if (command.type === 'restore-commit') {
    assert(command.bytes <= restoreGroupBytesMax, 'restore-commit: bytes within restoreGroupBytesMax');
  }
  return wire;
}

function wireOf(command: RestoreCommand): unknown[] {
  switch (command.type) {
    case 'restore-begin':
    case 'restore-abort':
      return [command.type, command.restoreId];
    case 'restore-chunk':
      return [command.type, command.restoreId, command.seq, command.data];
    case 'restore-batch':
      return [command.type, command.restoreId, command.seq, [...command.parts]];
    case 'restore-commit':
      return [command.type, command.restoreId, command.parts, command.bytes, command.digest];
  }
}

/**
 * Decodes [type, ...fields]; asserts a well-formed restore command. The previous release's
 * begin [type, id, bytes, sha256] and commit [type, id] may still be in a WAL after an
 * upgrade: they decode as legacy steps, which the FSM refuses, rather than stop the server.
 */
export function restoreFromWire(wire: unknown[]): RestoreCommand | LegacyRestoreCommand {
  const legacy = legacyFromWire(wire);
  if (legacy !== null) return legacy;
  checkRestoreWire(wire);
  const [type, restoreId] = wire as [RestoreCommand['type'], string];
  switch (type) {
    case 'restore-begin':
    case 'restore-abort':
      return { type, restoreId };
    case 'restore-chunk':
      // Copy: the decoder hands a view of the entry's buffer, which is not ours to keep.
      return { type, restoreId, seq: wire[2] as number, data: new Uint8Array(wire[3] as Uint8Array) };
    case 'restore-batch':
      // Copies, as for a chunk.
      return {
        type,
        restoreId,
        seq: wire[2] as number,
        parts: (wire[3] as Uint8Array[]).map((part) => new Uint8Array(part)),
      };
    case 'restore-commit':
      return {
        type,
        restoreId,
        parts: wire[2] as number,
        bytes: wire[3] as number,
        digest: wire[4] as string,
      };
  }
}

function checkRestoreWire(wire: unknown[]): void {
  const [type, restoreId] = wire;
  assert(
    typeof restoreId === 'string' && restoreId.length > 0 && restoreId.length <= restoreIdBytesMax,
    'a restore names a restoreId',
  );
  switch (type) {
    case 'restore-begin':
    case 'restore-abort':
      assert(wire.length === 2, () => `${type}: [type, restoreId]`);
      return;
    case 'restore-chunk':
      assert(wire.length === 4, 'restore-chunk: [type, restoreId, seq, data]');
      assert(isCount(wire[2]), 'restore-chunk: seq >= 0');
      assert(
        wire[3] instanceof Uint8Array && wire[3].byteLength <= restoreChunkBytesMax,
        'restore-chunk: data within restoreChunkBytesMax',
      );
      return;
    case 'restore-batch': {
      assert(wire.length === 4, 'restore-batch: [type, restoreId, seq, parts]');
      assert(isCount(wire[2]), 'restore-batch: seq >= 0');
      const parts = wire[3];
      assert(
        Array.isArray(parts) && parts.length >= 1 && parts.length <= restoreBatchPartsMax,
        'restore-batch: 1 to restoreBatchPartsMax parts',
      );
      let bytes = 0;
      for (const part of parts) {
        assert(
          part instanceof Uint8Array && part.byteLength <= restoreChunkBytesMax,
          'restore-batch: each part within restoreChunkBytesMax',
        );
        bytes += part.byteLength;
      }
      assert(bytes <= restoreBatchBytesMax, 'restore-batch: parts within restoreBatchBytesMax');
      return;
    }
    case 'restore-commit':
      assert(wire.length === 5, 'restore-commit: [type, restoreId, parts, bytes, digest]');
      assert(isCount(wire[2]) && wire[2] >= 1, 'restore-commit: parts >= 1 (the header)');
      assert(isCount(wire[3]), 'restore-commit: bytes >= 0');
      assert(typeof wire[4] === 'string' && digestPattern.test(wire[4]), 'restore-commit: a hex digest');
      return;
    default:
      assert(false, () => `unknown restore command ${String(type)}`);
  }
}

/** The previous release's begin or commit, or null for any other shape. */
function legacyFromWire(wire: unknown[]): LegacyRestoreCommand | null {
  const [type, restoreId, bytes, sha256] = wire;
  if (typeof restoreId !== 'string' || restoreId.length === 0 || restoreId.length > restoreIdBytesMax)
    return null;
  if (type === 'restore-begin' && wire.length === 4 && isCount(bytes) && typeof sha256 === 'string') {
    return { type: 'restore-legacy', restoreId, step: 'begin' };
  }
  if (type === 'restore-commit' && wire.length === 2)
    return { type: 'restore-legacy', restoreId, step: 'commit' };
  return null;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
