import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLinearizable } from './check.js';
import { type KvInput, type KvOperation, type KvOutput, kvModel } from './kv-model.js';

/** What happened to an operation: observed, or lost by the client after it did / did not apply. */
type Fate = 'known' | 'lostApplied' | 'lostSkipped';

interface OpSpec {
  readonly kind: 'get' | 'put' | 'cas';
  readonly key: number;
  readonly callTime: number;
  readonly durationTime: number;
  /** Where in [call, return] the op takes effect, in thousandths of its duration. */
  readonly pointPermille: number;
  /** For a CAS: whether `expected` is the current value (so it succeeds) or a miss. */
  readonly casHits: boolean;
  readonly fate: Fate;
}

const opSpec: fc.Arbitrary<OpSpec> = fc.record({
  kind: fc.constantFrom('get', 'put', 'cas'),
  key: fc.integer({ min: 0, max: 2 }),
  // Small integer times make equal-time calls and returns common, exercising the tie rule.
  callTime: fc.integer({ min: 0, max: 60 }),
  durationTime: fc.integer({ min: 0, max: 12 }),
  pointPermille: fc.integer({ min: 0, max: 1000 }),
  casHits: fc.boolean(),
  fate: fc.constantFrom<Fate>('known', 'known', 'known', 'known', 'lostApplied', 'lostSkipped'),
});

function linearizationTime(spec: OpSpec): number {
  return spec.callTime + Math.floor((spec.durationTime * spec.pointPermille) / 1000);
}

/** Applies one op to a real register map; returns its input and the output it really got. */
function apply(
  register: Map<string, string>,
  spec: OpSpec,
  id: number,
): { input: KvInput; output: KvOutput } {
  const key = `k${spec.key}`;
  const current = register.get(key) ?? null;
  const takesEffect = spec.fate !== 'lostSkipped';
  if (spec.kind === 'get') return { input: { kind: 'get', key }, output: { value: current } };
  const value = `v${id}`; // unique, so a read pins down exactly which write it saw
  if (spec.kind === 'put') {
    if (takesEffect) register.set(key, value);
    return { input: { kind: 'put', key, value }, output: {} };
  }
  const expected = spec.casHits ? current : `miss${id}`;
  if (takesEffect && spec.casHits) register.set(key, value);
  return { input: { kind: 'cas', key, expected, value }, output: { ok: spec.casHits } };
}

/** Runs the specs against a sequential register in linearization-point order. */
function runHistory(specs: readonly OpSpec[]): KvOperation[] {
  const order = specs.map((_, id) => id);
  order.sort(
    (a, b) => linearizationTime(specs[a] as OpSpec) - linearizationTime(specs[b] as OpSpec) || a - b,
  );
  const register = new Map<string, string>();
  const history: KvOperation[] = new Array(specs.length);
  for (const id of order) {
    const spec = specs[id] as OpSpec;
    const { input, output } = apply(register, spec, id);
    const known = spec.fate === 'known';
    history[id] = {
      clientId: id,
      input,
      call: spec.callTime,
      output: known ? output : undefined,
      return: known ? spec.callTime + spec.durationTime : Number.POSITIVE_INFINITY,
    };
  }
  return history;
}

const histories = fc.array(opSpec, { minLength: 1, maxLength: 60, size: 'max' }).map(runHistory);
const limits = { stepsMax: 2_000_000 };

describe('checkLinearizable against a real register', () => {
  it('accepts every history a sequential register produces under real-time overlap', () => {
    fc.assert(
      fc.property(histories, (history) => {
        expect(checkLinearizable(kvModel, history, limits)).toEqual({ result: 'ok' });
      }),
      { numRuns: 300 },
    );
  });

  it('rejects the same history once one read returns a value never written', () => {
    fc.assert(
      fc.property(histories, fc.nat(), (history, pick) => {
        const reads = history.flatMap((op, i) => (op.input.kind === 'get' && op.output ? [i] : []));
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length] ?? 0;
        const mutated = history.map((op, i) =>
          i === victim ? { ...op, output: { value: 'never-written' } } : op,
        );
        expect(checkLinearizable(kvModel, mutated, limits).result).toBe('illegal');
      }),
      { numRuns: 300 },
    );
  });
});
