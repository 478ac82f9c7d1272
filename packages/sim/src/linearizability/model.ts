import type { Operation } from './history.js';

/** What a model says about one operation applied to one state. */
export interface StepResult<State> {
  /** Whether the recorded output is a legal answer for this input from this state. */
  readonly ok: boolean;
  /** The state after the operation; meaningful only when `ok`. */
  readonly state: State;
}

/**
 * A sequential specification the checker tests histories against. States must be treated
 * as immutable: the search keeps old states on its backtracking stack and in its cache.
 */
export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies `input` to `state`. `output` is `undefined` when the outcome is unknown (the
   * client timed out): the model then answers as if the operation took effect, whatever it
   * returned. The checker separately allows such an operation never to take effect.
   */
  step(state: State, input: Input, output: Output | undefined): StepResult<State>;
  /** Exact state equality; settles collisions of `hash`. */
  equal(a: State, b: State): boolean;
  /** A memoisation key: equal states must hash alike; unequal ones may collide. */
  hash(state: State): string;
  /**
   * Splits a history into sub-histories that cannot constrain each other (for a key-value
   * store: one per key). Each is checked alone, which turns one exponential search into
   * many small ones. Absent: the whole history is one partition.
   */
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /**
   * True when the input cannot change the state. An unknown-outcome read constrains
   * nothing, so the checker drops it instead of searching over where it might go.
   */
  isReadOnly?(input: Input): boolean;
  /**
   * Unknown-outcome operations nothing else in the history can have observed (for a
   * key-value store: writes whose value no read returned and no compare-and-set named).
   * One may always be linearized last, since it never returned, where it constrains
   * nothing: the checker drops them instead of searching over where they might go.
   */
  unobserved?(history: readonly Operation<Input, Output>[]): ReadonlySet<Operation<Input, Output>>;
  /** One line for error reports; `output` is `undefined` for an unknown outcome. */
  describe(input: Input, output: Output | undefined): string;
}
