import type { Operation } from './history.js';
import type { Model, StepResult } from './model.js';

export type KvInput =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  /** Compare-and-set: writes `value` only if the key currently holds `expected` (null: absent). */
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

export type KvGetOutput = { readonly value: string | null };
export type KvPutOutput = Readonly<Record<string, never>>;
export type KvCasOutput = { readonly ok: boolean };
export type KvOutput = KvGetOutput | KvPutOutput | KvCasOutput;

/** Key to value; absent keys are absent. Never mutated: each write makes a new map. */
export type KvState = ReadonlyMap<string, string>;

export type KvOperation = Operation<KvInput, KvOutput>;

function read(state: KvState, key: string): string | null {
  return state.get(key) ?? null;
}

function write(state: KvState, key: string, value: string): KvState {
  // Copy-on-write is cheap here: partitioning by key keeps each state to one entry.
  return new Map(state).set(key, value);
}

function stepGet(state: KvState, key: string, output: KvOutput | undefined): StepResult<KvState> {
  if (output === undefined) return { ok: true, state };
  if (!('value' in output)) throw new TypeError(`get(${key}) recorded a non-get output`);
  return { ok: output.value === read(state, key), state };
}

function stepCas(
  state: KvState,
  input: Extract<KvInput, { kind: 'cas' }>,
  output: KvOutput | undefined,
): StepResult<KvState> {
  const matches = read(state, input.key) === input.expected;
  const next = matches ? write(state, input.key, input.value) : state;
  // Unknown outcome: whichever way the comparison went here is what happened.
  if (output === undefined) return { ok: true, state: next };
  if (!('ok' in output)) throw new TypeError(`cas(${input.key}) recorded a non-cas output`);
  return { ok: output.ok === matches, state: next };
}

function quote(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function describeOutput(output: KvOutput | undefined): string {
  if (output === undefined) return '?';
  if ('value' in output) return quote(output.value);
  if ('ok' in output) return output.ok ? 'ok' : 'failed';
  return 'ok';
}

function describeInput(input: KvInput): string {
  const key = JSON.stringify(input.key);
  switch (input.kind) {
    case 'get':
      return `get(${key})`;
    case 'put':
      return `put(${key}, ${quote(input.value)})`;
    case 'cas':
      return `cas(${key}, ${quote(input.expected)} -> ${quote(input.value)})`;
  }
}

/** One independent register per key: groups by key in order of first appearance. */
function partitionByKey(history: readonly KvOperation[]): KvOperation[][] {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    const group = byKey.get(op.input.key);
    if (group === undefined) byKey.set(op.input.key, [op]);
    else group.push(op);
  }
  return [...byKey.values()];
}

/**
 * Unknown-outcome writes nothing can have observed. A write's value names it (the
 * simulator's workload writes distinct values): one no completed read returned and no
 * compare-and-set expected was never seen. A failed compare-and-set observes only that the
 * value was something else, which any write current at the time may explain, so a write
 * called before such a failure returned is kept; one called after every failure is not.
 */
function unobservedWrites(history: readonly KvOperation[]): ReadonlySet<KvOperation> {
  const observed = new Set<string>();
  let lastFailureReturn = Number.NEGATIVE_INFINITY;
  for (const op of history) {
    if (op.input.kind === 'cas' && op.input.expected !== null) observed.add(op.input.expected);
    if (op.output === undefined) continue;
    if ('value' in op.output && op.output.value !== null) observed.add(op.output.value);
    if ('ok' in op.output && !op.output.ok) lastFailureReturn = Math.max(lastFailureReturn, op.return);
  }
  const unobserved = new Set<KvOperation>();
  for (const op of history) {
    if (op.output !== undefined || op.input.kind === 'get') continue;
    if (!observed.has(op.input.value) && op.call > lastFailureReturn) unobserved.add(op);
  }
  return unobserved;
}

function hashState(state: KvState): string {
  return JSON.stringify([...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function equalStates(a: KvState, b: KvState): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) {
    if (b.get(key) !== value) return false;
  }
  return true;
}

/** The key-value store the simulator's clients talk to, as a sequential specification. */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    switch (input.kind) {
      case 'get':
        return stepGet(state, input.key, output);
      case 'put':
        return { ok: true, state: write(state, input.key, input.value) };
      case 'cas':
        return stepCas(state, input, output);
    }
  },
  equal: equalStates,
  hash: hashState,
  partition: partitionByKey,
  isReadOnly: (input) => input.kind === 'get',
  unobserved: unobservedWrites,
  describe: (input, output) => `${describeInput(input)} -> ${describeOutput(output)}`,
};
