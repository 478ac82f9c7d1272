import type { Operation } from './history.js';
import type { Model } from './model.js';
import type { StuckPoint } from './search.js';

/** Reports only need to print operations. */
type Describer<I, O> = Pick<Model<never, I, O>, 'describe'>;

/** Lines per list in a report: enough to debug, bounded so a huge history cannot flood a log. */
const LIST_LINES_MAX = 12;

function describeOp<I, O>(model: Describer<I, O>, op: Operation<I, O>): string {
  const returned = Number.isFinite(op.return) ? String(op.return) : 'unknown';
  return `client ${op.clientId}: ${model.describe(op.input, op.output)} [call ${op.call}, return ${returned}]`;
}

/** The last `LIST_LINES_MAX` lines, numbered, with a note of what was left out. */
function tailList(lines: readonly string[]): string[] {
  const skipped = Math.max(0, lines.length - LIST_LINES_MAX);
  const shown = lines.slice(skipped).map((line, i) => `  ${skipped + i + 1}. ${line}`);
  return skipped > 0 ? [`  (${skipped} earlier omitted)`, ...shown] : shown;
}

function headList(lines: readonly string[]): string[] {
  const shown = lines.slice(0, LIST_LINES_MAX).map((line) => `  - ${line}`);
  const skipped = lines.length - shown.length;
  return skipped > 0 ? [...shown, `  (${skipped} more omitted)`] : shown;
}

export interface Explained<I, O> {
  readonly longestPrefix: Operation<I, O>[];
  readonly explanation: string;
}

/**
 * Explains a failed partition: the deepest linearizable prefix the search found, the op
 * whose return came before it could be placed, and the ops that were candidates to go next.
 */
export function explainStuck<I, O>(
  model: Describer<I, O>,
  ops: readonly Operation<I, O>[],
  partition: number,
  stuck: StuckPoint,
): Explained<I, O> {
  const longestPrefix = stuck.prefix.flatMap((id) => ops[id] ?? []);
  const blocking = ops[stuck.blockingOpId];
  const placed = new Set(stuck.prefix);
  const deadline = blocking?.return ?? Number.POSITIVE_INFINITY;
  // Equal times count as concurrent, so an op called exactly at the deadline was a candidate.
  const candidates = ops.filter((op, id) => !placed.has(id) && op.call <= deadline);
  const lines = [
    `partition ${partition} (${ops.length} operations) is not linearizable.`,
    `Longest linearizable prefix (${longestPrefix.length} operations, in order):`,
    ...(longestPrefix.length === 0
      ? ['  (none)']
      : tailList(longestPrefix.map((op) => describeOp(model, op)))),
    'After that prefix, this operation returned before any legal order could include it:',
    `  ${blocking === undefined ? '(unknown)' : describeOp(model, blocking)}`,
    'Operations pending at that point (each is illegal next, or leads only to dead ends):',
    ...headList(candidates.map((op) => describeOp(model, op))),
  ];
  return { longestPrefix, explanation: lines.join('\n') };
}
