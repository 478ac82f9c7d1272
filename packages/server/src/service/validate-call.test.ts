import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { PartsDigest, snapshotRowBytesMax } from '../fsm/index.js';
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
