import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { PartsDigest, snapshotRowBytesMax } from '../fsm/index.js';
import {
  restoreBatchBytesMax,
  restoreBatchPartsMax,
  restoreChunkBytesMax,
  restoreIdBytesMax,
} from '../fsm/restore-wire.js';
import { txnOpsMaxCeiling } from './types.js';
import { parseGroupCall } from './validate-call.js';

const apply = (command: Record<string, unknown>) => ({ kind: 'apply', command });
const commit = { type: 'restore-commit', restoreId: 'r1', parts: 1, bytes: 3 };

describe('parseGroupCall of a restore-commit', () => {
  it('takes the chained digest of the parts as `digest`', () => {
    const digest = PartsDigest.hexOf([new Uint8Array([1, 2, 3])]);
    expect(parseGroupCall(apply({ ...commit, digest }))).toEqual({
      kind: 'apply',
      command: { ...commit, digest },
    });
  });

  it('refuses a commit with no digest, the old `sha256` field, or a digest that is not 64 lowercase hex digits', () => {
    const hex = 'a'.repeat(64);
    for (const fields of [{}, { sha256: hex }, { digest: hex.slice(1) }, { digest: hex.toUpperCase() }]) {
      let caught: unknown = null;
      try {
        parseGroupCall(apply({ ...commit, ...fields }));
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(fields)).toBeInstanceOf(ConclaveError);
      expect((caught as ConclaveError).code).toBe('BAD_REQUEST');
      expect((caught as ConclaveError).message).toMatch(/command\.digest/u);
    }
  });
});

describe('parseGroupCall of a kv write', () => {
  const set = (value: Uint8Array) => apply({ type: 'kv', op: { verb: 'set', key: 'k', value } });

  it('refuses a value that would make a row past snapshotRowBytesMax, which the snapshot encoder asserts on', () => {
    expect(() => parseGroupCall(set(new Uint8Array(snapshotRowBytesMax)))).toThrow(/as a row/u);
    expect(parseGroupCall(set(new Uint8Array(512 * 1024)))).toMatchObject({ kind: 'apply' });
  });
});

describe('parseGroupCall of a txn', () => {
  const txn = (n: number) =>
    apply({ type: 'txn', ops: [...Array(n).keys()].map((i) => ({ verb: 'get', key: `{t}/${i}` })) });

  it('takes as many ops as any server may be configured for (txnOpsMax), not only the default 128', () => {
    expect(parseGroupCall(txn(1024))).toMatchObject({ kind: 'apply', command: { type: 'txn' } });
    expect(() => parseGroupCall(txn(txnOpsMaxCeiling + 1))).toThrow(/at most 4096/u);
  });
});

describe('parseGroupCall of a restore-batch', () => {
  const batch = (fields: Record<string, unknown>) =>
    apply({ type: 'restore-batch', restoreId: 'r1', seq: 4, ...fields });

  /** The BAD_REQUEST a call is refused with (never an assertion: the endpoint is open to any peer). */
  function refusal(call: unknown): ConclaveError {
    let caught: unknown = null;
    try {
      parseGroupCall(call);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConclaveError);
    expect((caught as ConclaveError).code).toBe('BAD_REQUEST');
    return caught as ConclaveError;
  }

  it('takes consecutive parts from seq, up to every bound at once', () => {
    const parts = [new Uint8Array([1]), new Uint8Array([2, 3])];
    expect(parseGroupCall(batch({ parts }))).toEqual({
      kind: 'apply',
      command: { type: 'restore-batch', restoreId: 'r1', seq: 4, parts },
    });
    const part = new Uint8Array(Math.floor(restoreBatchBytesMax / restoreBatchPartsMax));
    const full = Array.from({ length: restoreBatchPartsMax }, () => part);
    // Compared by identity: a deep compare of 1 MiB byte by byte is slow.
    const parsed = parseGroupCall(batch({ parts: full }));
    const taken =
      parsed.kind === 'apply' && parsed.command.type === 'restore-batch' ? parsed.command.parts : [];
    expect(taken).toHaveLength(restoreBatchPartsMax);
    expect(taken.every((p) => p === part)).toBe(true);
    expect(parseGroupCall(batch({ parts: [new Uint8Array(restoreChunkBytesMax)] }))).toMatchObject({
      kind: 'apply',
    });
  });

  it('refuses parts that are missing, not bytes, too many, too large each or in all, and a bad seq or restoreId', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ parts: undefined }, /command\.parts must be an array of 1-/u],
      [{ parts: [] }, /command\.parts must be an array of 1-/u],
      [{ parts: new Uint8Array(3) }, /command\.parts must be an array/u],
      [
        { parts: Array.from({ length: restoreBatchPartsMax + 1 }, () => new Uint8Array(1)) },
        new RegExp(`1-${restoreBatchPartsMax} parts`, 'u'),
      ],
      [{ parts: [new Uint8Array(1), 'text'] }, /command\.parts\[1\] must be bytes/u],
      [{ parts: [new Uint8Array(restoreChunkBytesMax + 1)] }, /command\.parts\[0\] is over/u],
      [
        {
          parts: [
            new Uint8Array(restoreChunkBytesMax),
            new Uint8Array(restoreBatchBytesMax - restoreChunkBytesMax + 1),
          ],
        },
        /restoreBatchBytesMax/u,
      ],
      [{ parts: [new Uint8Array(1)], seq: -1 }, /command\.seq/u],
      [{ parts: [new Uint8Array(1)], seq: Number.MAX_SAFE_INTEGER }, /command\.seq is too large/u],
      [{ parts: [new Uint8Array(1)], restoreId: 'x'.repeat(restoreIdBytesMax + 1) }, /restoreId/u],
    ];
    for (const [fields, message] of cases) {
      expect(refusal(batch(fields)).message, JSON.stringify(Object.keys(fields))).toMatch(message);
    }
  });
});
