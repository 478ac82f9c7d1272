import type { Operation } from './history.js';
import type { Model, StepResult } from './model.js';

/**
 * Sequential specifications of Conclave's coordination primitives, for histories recorded
 * against a real cluster. Fences and terms are chosen by the server, so the models take
 * them from the outputs and check what the primitives promise of them: a new fence or term
 * is larger than every one before; an unchanged leader keeps its term.
 */

const json = (value: unknown): string => JSON.stringify(value);

// ---- Counter -------------------------------------------------------------------------

export type CounterInput = { readonly kind: 'get' } | { readonly kind: 'add'; readonly delta: number };
/** Both answer the counter's value after the operation. */
export type CounterOutput = { readonly value: number };

export const counterModel: Model<number, CounterInput, CounterOutput> = {
  init: () => 0,
  step(state, input, output) {
    const next = input.kind === 'add' ? state + input.delta : state;
    return { ok: output === undefined || output.value === next, state: next };
  },
  equal: (a, b) => a === b,
  hash: (state) => String(state),
  isReadOnly: (input) => input.kind === 'get',
  describe: (input, output) =>
    `${input.kind === 'add' ? `add(${input.delta})` : 'get()'} -> ${output === undefined ? '?' : output.value}`,
};

// ---- Set (one boolean register per element) ------------------------------------------

export type SetInput =
  | { readonly kind: 'add'; readonly element: string }
  | { readonly kind: 'remove'; readonly element: string }
  | { readonly kind: 'contains'; readonly element: string };
/** add: whether it was absent; remove: whether it was present; contains: whether it is. */
export type SetOutput = { readonly answer: boolean };

export const setModel: Model<boolean, SetInput, SetOutput> = {
  init: () => false,
  step(present, input, output) {
    const answer = input.kind === 'add' ? !present : present;
    const next = input.kind === 'add' ? true : input.kind === 'remove' ? false : present;
    return { ok: output === undefined || output.answer === answer, state: next };
  },
  equal: (a, b) => a === b,
  hash: (state) => String(state),
  partition: (history) => byKey(history, (input) => input.element),
  isReadOnly: (input) => input.kind === 'contains',
  describe: (input, output) =>
    `${input.kind}(${json(input.element)}) -> ${output === undefined ? '?' : output.answer}`,
};

// ---- List ----------------------------------------------------------------------------

export type ListInput = { readonly kind: 'append'; readonly value: string } | { readonly kind: 'items' };
/** append: the index the value took; items: the whole list. */
export type ListOutput = { readonly index: number } | { readonly items: readonly string[] };

export const listModel: Model<readonly string[], ListInput, ListOutput> = {
  init: () => [],
  step(items, input, output): StepResult<readonly string[]> {
    if (input.kind === 'append') {
      const ok = output === undefined || ('index' in output && output.index === items.length);
      return { ok, state: [...items, input.value] };
    }
    const ok = output === undefined || ('items' in output && json(output.items) === json(items));
    return { ok, state: items };
  },
  equal: (a, b) => json(a) === json(b),
  hash: json,
  isReadOnly: (input) => input.kind === 'items',
  describe: (input, output) =>
    `${input.kind === 'append' ? `append(${json(input.value)})` : 'items()'} -> ${output === undefined ? '?' : json(output)}`,
};

// ---- Lock ----------------------------------------------------------------------------

export type LockInput =
  | { readonly kind: 'acquire'; readonly client: string }
  | { readonly kind: 'release'; readonly client: string; readonly fence: number };
/** acquire: the fence granted; release: whether the fence held the lock. */
export type LockOutput = { readonly fence: number } | { readonly released: boolean };

export interface LockState {
  readonly holder: string | null;
  /** The holder's fence, or the last one granted when free (0 before any). */
  readonly fence: number;
}

export const lockModel: Model<LockState, LockInput, LockOutput> = {
  init: () => ({ holder: null, fence: 0 }),
  step(state, input, output): StepResult<LockState> {
    if (input.kind === 'acquire') {
      if (state.holder !== null) return { ok: false, state };
      // An acquire that never answered took some fence above every earlier one, unknown
      // here: a half step marks it, which any later fence passes and any release matches.
      if (output === undefined)
        return { ok: true, state: { holder: input.client, fence: state.fence + 0.5 } };
      const ok = 'fence' in output && output.fence > state.fence;
      return { ok, state: { holder: input.client, fence: 'fence' in output ? output.fence : state.fence } };
    }
    const holds =
      state.holder === input.client && (state.fence === input.fence || !Number.isInteger(state.fence));
    const next = holds ? { holder: null, fence: state.fence } : state;
    if (output === undefined) return { ok: true, state: next };
    return { ok: 'released' in output && output.released === holds, state: next };
  },
  equal: (a, b) => a.holder === b.holder && a.fence === b.fence,
  hash: json,
  describe: (input, output) =>
    `${input.client} ${input.kind === 'acquire' ? 'acquire()' : `release(${input.fence})`} -> ${output === undefined ? '?' : json(output)}`,
};

// ---- LeaderElection ------------------------------------------------------------------

export type ElectionInput =
  | { readonly kind: 'enter'; readonly candidate: string }
  | { readonly kind: 'withdraw'; readonly candidate: string }
  | { readonly kind: 'term' };
/** Every operation answers the election as it stands after it. */
export type ElectionOutput = {
  readonly term: number;
  readonly leader: string | null;
  readonly candidates: readonly string[];
};

export interface ElectionModelState {
  readonly candidates: readonly string[];
  /** The current term; null when an unanswered operation changed the leader at a term unknown. */
  readonly term: number | null;
  /** The largest term seen: a new leader's term must pass it. */
  readonly termMax: number;
}

export const electionModel: Model<ElectionModelState, ElectionInput, ElectionOutput> = {
  init: () => ({ candidates: [], term: 0, termMax: 0 }),
  step(state, input, output): StepResult<ElectionModelState> {
    const candidates =
      input.kind === 'enter' && !state.candidates.includes(input.candidate)
        ? [...state.candidates, input.candidate]
        : input.kind === 'withdraw'
          ? state.candidates.filter((c) => c !== input.candidate)
          : state.candidates;
    const leaderChanged = (candidates[0] ?? null) !== (state.candidates[0] ?? null);
    if (output === undefined) {
      return {
        ok: true,
        state: { candidates, term: leaderChanged ? null : state.term, termMax: state.termMax },
      };
    }
    const sameLine =
      json(output.candidates) === json(candidates) && output.leader === (candidates[0] ?? null);
    const termOk = leaderChanged
      ? output.term > state.termMax
      : state.term === null
        ? output.term > state.termMax || output.term === state.termMax
        : output.term === state.term;
    return {
      ok: sameLine && termOk,
      state: { candidates, term: output.term, termMax: Math.max(state.termMax, output.term) },
    };
  },
  equal: (a, b) => json(a) === json(b),
  hash: json,
  isReadOnly: (input) => input.kind === 'term',
  describe: (input, output) =>
    `${input.kind}${'candidate' in input ? `(${input.candidate})` : '()'} -> ${output === undefined ? '?' : json(output)}`,
};

function byKey<I, O>(history: readonly Operation<I, O>[], keyOf: (input: I) => string): Operation<I, O>[][] {
  const groups = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    const key = keyOf(op.input);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [op]);
    else group.push(op);
  }
  return [...groups.values()];
}
