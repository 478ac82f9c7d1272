import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLinearizable } from './check.js';
import { type KvInput, type KvOperation, type KvOutput, type KvState, kvModel } from './kv-model.js';

/** Ops a brute-force search may place first: no other remaining op returned strictly before its call. */
function minimal(remaining: readonly KvOperation[]): KvOperation[] {
  return remaining.filter((op) => !remaining.some((other) => other.return < op.call));
}

/**
 * The definition of linearizability, searched naively: some order respecting real time,
 * in which every known op is legal and unknown ops are either placed or left out.
 */
function bruteForce(state: KvState, remaining: readonly KvOperation[]): boolean {
  if (remaining.every((op) => op.output === undefined)) return true;
  return minimal(remaining).some((op) => {
    const rest = remaining.filter((other) => other !== op);
    if (op.output === undefined && bruteForce(state, rest)) return true;
    const result = kvModel.step(state, op.input, op.output);
    return result.ok && bruteForce(result.state, rest);
  });
}

const value = fc.constantFrom<string | null>(null, 'a', 'b');

/** Arbitrary (mostly non-linearizable) single-key operations with arbitrary outputs. */
const arbitraryOp: fc.Arbitrary<KvOperation> = fc
  .record({
    kind: fc.constantFrom('get', 'put', 'cas'),
    written: fc.constantFrom('a', 'b'),
    expected: value,
    read: value,
    casOk: fc.boolean(),
    call: fc.integer({ min: 0, max: 8 }),
    durationTime: fc.integer({ min: 0, max: 4 }),
    lost: fc.boolean(),
  })
  .map((r): KvOperation => {
    const input: KvInput =
      r.kind === 'get'
        ? { kind: 'get', key: 'x' }
        : r.kind === 'put'
          ? { kind: 'put', key: 'x', value: r.written }
          : { kind: 'cas', key: 'x', expected: r.expected, value: r.written };
    const output: KvOutput = r.kind === 'get' ? { value: r.read } : r.kind === 'put' ? {} : { ok: r.casOk };
    return r.lost
      ? { clientId: 0, input, call: r.call, output: undefined, return: Number.POSITIVE_INFINITY }
      : { clientId: 0, input, call: r.call, output, return: r.call + r.durationTime };
  });

describe('checkLinearizable against a brute-force oracle', () => {
  it('agrees on every small history, linearizable or not', () => {
    fc.assert(
      fc.property(fc.array(arbitraryOp, { minLength: 1, maxLength: 7, size: 'max' }), (history) => {
        const expected = bruteForce(kvModel.init(), history) ? 'ok' : 'illegal';
        expect(checkLinearizable(kvModel, history, { stepsMax: 1_000_000 }).result).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
