import { assert } from '@conclave/raft';
import type { FsmCommand } from './commands.js';

type RestoreCommand = Extract<FsmCommand, { type: 'restore-begin' | 'restore-chunk' | 'restore-commit' }>;

/** Limits a restore's commands obey; validate-call.ts refuses anything outside them first. */
export const restoreChunkBytesMax = 512 * 1024;
/** One group's state staged for a restore: held in memory on every server until commit. */
export const restoreGroupBytesMax = 1024 * 1024 * 1024;
export const restoreIdBytesMax = 128;

/** The wire tuple after the version: [type, ...fields], fixed shapes. */
export function restoreToWire(command: RestoreCommand): unknown[] {
  const wire = wireOf(command);
  checkRestoreWire(wire);
  return wire;
}

function wireOf(command: RestoreCommand): unknown[] {
  switch (command.type) {
    case 'restore-begin':
      return [command.type, command.restoreId, command.bytes, command.sha256];
    case 'restore-chunk':
      return [command.type, command.restoreId, command.seq, command.data];
    case 'restore-commit':
      return [command.type, command.restoreId];
  }
}

/** Decodes [type, ...fields]; asserts a well-formed restore command. */
export function restoreFromWire(wire: unknown[]): RestoreCommand {
  checkRestoreWire(wire);
  const [type, restoreId] = wire as [RestoreCommand['type'], string];
  switch (type) {
    case 'restore-begin':
      return { type, restoreId, bytes: wire[2] as number, sha256: wire[3] as string };
    case 'restore-chunk':
      // Copy: the decoder hands a view of the entry's buffer, which is not ours to keep.
      return { type, restoreId, seq: wire[2] as number, data: new Uint8Array(wire[3] as Uint8Array) };
    case 'restore-commit':
      return { type, restoreId };
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
      assert(wire.length === 4, 'restore-begin: [type, restoreId, bytes, sha256]');
      assert(
        Number.isSafeInteger(wire[2]) &&
          (wire[2] as number) >= 0 &&
          (wire[2] as number) <= restoreGroupBytesMax,
        'restore-begin: bytes within restoreGroupBytesMax',
      );
      assert(typeof wire[3] === 'string' && /^[0-9a-f]{64}$/u.test(wire[3]), 'restore-begin: a hex sha256');
      return;
    case 'restore-chunk':
      assert(wire.length === 4, 'restore-chunk: [type, restoreId, seq, data]');
      assert(Number.isSafeInteger(wire[2]) && (wire[2] as number) >= 0, 'restore-chunk: seq >= 0');
      assert(
        wire[3] instanceof Uint8Array && wire[3].byteLength <= restoreChunkBytesMax,
        'restore-chunk: data within restoreChunkBytesMax',
      );
      return;
    case 'restore-commit':
      assert(wire.length === 2, 'restore-commit: [type, restoreId]');
      return;
    default:
      assert(false, () => `unknown restore command ${String(type)}`);
  }
}
