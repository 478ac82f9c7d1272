import { assert } from '@conclave/raft';
import type { FsmCommand } from './commands.js';
import { snapshotPartBytesMax } from './snapshot-limits.js';

export type RestoreCommand = Extract<
  FsmCommand,
  { type: 'restore-begin' | 'restore-chunk' | 'restore-commit' | 'restore-abort' }
>;

/** Limits a restore's commands obey; validate-call.ts refuses anything outside them first. */
/** A chunk carries exactly one snapshot part, and stays within a Raft proposal (1 MiB). */
export const restoreChunkBytesMax = snapshotPartBytesMax;
/** Bytes of parts one group's restore may stage: their decoded rows are held on every server until commit. */
export const restoreGroupBytesMax = 1024 * 1024 * 1024;
export const restoreIdBytesMax = 128;
const digestPattern = /^[0-9a-f]{64}$/u;

/** The wire tuple after the version: [type, ...fields], fixed shapes. */
export function restoreToWire(command: RestoreCommand): unknown[] {
  const wire = wireOf(command);
  checkRestoreWire(wire);
  return wire;
}

function wireOf(command: RestoreCommand): unknown[] {
  switch (command.type) {
    case 'restore-begin':
    case 'restore-abort':
      return [command.type, command.restoreId];
    case 'restore-chunk':
      return [command.type, command.restoreId, command.seq, command.data];
    case 'restore-commit':
      return [command.type, command.restoreId, command.parts, command.bytes, command.digest];
  }
}

/** Decodes [type, ...fields]; asserts a well-formed restore command. */
export function restoreFromWire(wire: unknown[]): RestoreCommand {
  checkRestoreWire(wire);
  const [type, restoreId] = wire as [RestoreCommand['type'], string];
  switch (type) {
    case 'restore-begin':
    case 'restore-abort':
      return { type, restoreId };
    case 'restore-chunk':
      // Copy: the decoder hands a view of the entry's buffer, which is not ours to keep.
      return { type, restoreId, seq: wire[2] as number, data: new Uint8Array(wire[3] as Uint8Array) };
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
    case 'restore-commit':
      assert(wire.length === 5, 'restore-commit: [type, restoreId, parts, bytes, digest]');
      assert(isCount(wire[2]) && wire[2] >= 1, 'restore-commit: parts >= 1 (the header)');
      assert(
        isCount(wire[3]) && wire[3] <= restoreGroupBytesMax,
        'restore-commit: bytes within restoreGroupBytesMax',
      );
      assert(typeof wire[4] === 'string' && digestPattern.test(wire[4]), 'restore-commit: a hex digest');
      return;
    default:
      assert(false, () => `unknown restore command ${String(type)}`);
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
