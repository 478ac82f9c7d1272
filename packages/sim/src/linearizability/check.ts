import { Budget } from './budget.js';
import { explainStuck } from './explain.js';
import { type Operation, validateOperation } from './history.js';
import type { Model } from './model.js';
import { searchPartition } from './search.js';

export interface CheckOptions {
  /** Wall-clock limit for the whole check; omit for none (the simulator prefers steps, which replay). */
  readonly timeBudgetMs?: number;
  /** Search steps allowed across all partitions together; past it the verdict is 'unknown'. */
  readonly stepsMax: number;
  /** Approximate memory the memoisation cache may use across all partitions. Default 256 MiB. */
  readonly cacheBytesMax?: number;
}

export type CheckResult<Input, Output> =
  | { readonly result: 'ok' }
  | {
      readonly result: 'illegal';
      /** Index into the model's partition of the history (0 when the model has none). */
      readonly partition: number;
      readonly longestPrefix: Operation<Input, Output>[];
      readonly explanation: string;
    }
  | { readonly result: 'unknown'; readonly reason: string };

const CACHE_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;

function validateOptions(options: CheckOptions): void {
  if (!Number.isInteger(options.stepsMax) || options.stepsMax < 1) {
    throw new RangeError(`stepsMax must be a positive integer, got ${options.stepsMax}`);
  }
  const { timeBudgetMs, cacheBytesMax } = options;
  if (timeBudgetMs !== undefined && !(timeBudgetMs > 0)) {
    throw new RangeError(`timeBudgetMs must be positive, got ${timeBudgetMs}`);
  }
  if (cacheBytesMax !== undefined && !(cacheBytesMax > 0)) {
    throw new RangeError(`cacheBytesMax must be positive, got ${cacheBytesMax}`);
  }
}

/**
 * Unknown-outcome reads constrain nothing (they may be placed anywhere), and neither do
 * unknown-outcome writes nobody observed (they may be placed last): both are dropped.
 */
function withoutUnconstrained<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
): Operation<I, O>[] {
  const isReadOnly = model.isReadOnly;
  const unobserved = model.unobserved?.(ops) ?? new Set<Operation<I, O>>();
  return ops.filter(
    (op) => op.output !== undefined || (!(isReadOnly?.call(model, op.input) ?? false) && !unobserved.has(op)),
  );
}

/**
 * Decides whether `operations` is linearizable with respect to `model`. Partitions are
 * checked in order; the first illegal one is reported. 'unknown' means a limit ran out
 * before a verdict: it is never a claim either way. Malformed histories throw RangeError.
 */
export function checkLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  options: CheckOptions,
): CheckResult<Input, Output> {
  validateOptions(options);
  operations.forEach(validateOperation);
  const budget = new Budget({
    stepsMax: options.stepsMax,
    timeBudgetMs: options.timeBudgetMs,
    cacheBytesMax: options.cacheBytesMax ?? CACHE_BYTES_MAX_DEFAULT,
  });
  const partitions = model.partition?.(operations) ?? [[...operations]];
  for (const [index, partition] of partitions.entries()) {
    const ops = withoutUnconstrained(model, partition);
    const outcome = searchPartition(model, ops, budget);
    if (outcome.kind === 'exhausted') {
      return { result: 'unknown', reason: `partition ${index} of ${partitions.length}: ${outcome.reason}` };
    }
    if (outcome.kind === 'illegal') {
      return { result: 'illegal', partition: index, ...explainStuck(model, ops, index, outcome.stuck) };
    }
  }
  return { result: 'ok' };
}
