import { assert } from '@conclave/raft';
import type { Args, KindMachine, PrimitiveError } from './kind.js';

/** One step of a map transaction, as `args.ops` carries it. */
export interface TransactionStep {
  readonly op: 'put' | 'insert' | 'update' | 'remove';
  readonly key: string;
  readonly value?: Uint8Array;
  readonly ifVersion?: number;
}

export const transactionStepOps: ReadonlySet<string> = new Set(['put', 'insert', 'update', 'remove']);

/** A row a transaction read, and what it would write there. */
export interface PlannedRow {
  readonly rowKey: string;
  readonly before: unknown;
  readonly after: unknown;
  readonly changed: boolean;
}

/**
 * Runs a transaction's steps in order on the states they name, each step seeing the ones
 * before it, and writes nothing: the plan is either refused whole (the first failing
 * step's error, named by its position) or every row's state after the last step, which the
 * engine then stores. Versions checked are those each step sees: a row a prior step wrote
 * is at this entry's index.
 */
export function planTransaction(options: {
  machine: KindMachine<unknown>;
  steps: readonly TransactionStep[];
  rowKeyOf: (key: string) => string;
  load: (rowKey: string) => { state: unknown; version: number };
  context: { index: number; session: string | null; fence: () => number };
}): { ok: true; rows: PlannedRow[]; results: unknown[] } | { ok: false; error: PrimitiveError } {
  const { machine, steps, context } = options;
  const rows = new Map<string, { before: unknown; state: unknown; version: number; changed: boolean }>();
  const results: unknown[] = [];
  for (const [position, step] of steps.entries()) {
    const rowKey = options.rowKeyOf(step.key);
    let row = rows.get(rowKey);
    if (row === undefined) {
      const loaded = options.load(rowKey);
      row = { before: loaded.state, state: loaded.state, version: loaded.version, changed: false };
      rows.set(rowKey, row);
    }
    if (step.ifVersion !== undefined && step.ifVersion !== row.version) {
      return failed(position, {
        code: 'VERSION_MISMATCH',
        message: `key ${JSON.stringify(step.key)} is at version ${row.version}, not ${step.ifVersion}`,
      });
    }
    const args: Args = { key: step.key, ...(step.value === undefined ? {} : { value: step.value }) };
    const outcome = machine.apply(step.op, { state: row.state, version: row.version, args, ...context });
    if (!outcome.ok) return failed(position, outcome.error);
    results.push(outcome.result);
    if ('unchanged' in outcome) continue;
    row.state = outcome.state;
    row.version = context.index;
    row.changed = true;
  }
  const planned = [...rows].map(([rowKey, row]) => ({
    rowKey,
    before: row.before,
    after: row.state,
    changed: row.changed,
  }));
  assert(planned.length <= steps.length, 'a transaction touches at most one row per step');
  return { ok: true, rows: planned, results };
}

function failed(position: number, error: PrimitiveError): { ok: false; error: PrimitiveError } {
  return { ok: false, error: { code: error.code, message: `step ${position}: ${error.message}` } };
}
