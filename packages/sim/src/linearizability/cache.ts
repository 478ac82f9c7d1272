import type { Bitset } from './bitset.js';
import type { Budget } from './budget.js';
import type { Model } from './model.js';

/** The part of a model the cache needs. */
type StateIdentity<State> = Pick<Model<State, never, never>, 'hash' | 'equal'>;

interface CacheEntry<State> {
  readonly linearized: Uint32Array;
  readonly state: State;
}

/** A rough per-entry overhead (object, array slot, typed-array header) for memory accounting. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * Remembers (set of linearized ops, model state) pairs already explored. Two search paths
 * reaching the same pair have the same future, so the second is pruned. Buckets are keyed
 * by both hashes; exact comparison inside a bucket makes hash collisions harmless.
 */
export class SearchCache<State> {
  readonly #buckets = new Map<string, CacheEntry<State>[]>();
  readonly #model: StateIdentity<State>;
  readonly #budget: Budget;

  constructor(model: StateIdentity<State>, budget: Budget) {
    this.#model = model;
    this.#budget = budget;
  }

  /**
   * Adds the pair unless present. Returns 'added', 'seen', or 'full' when the memory
   * budget ran out (the caller then stops with an unknown verdict).
   */
  add(linearized: Bitset, state: State): 'added' | 'seen' | 'full' {
    const key = `${linearized.hash}:${this.#model.hash(state)}`;
    const bucket = this.#buckets.get(key);
    if (bucket?.some((e) => linearized.equalsWords(e.linearized) && this.#model.equal(e.state, state))) {
      return 'seen';
    }
    const entry = { linearized: linearized.snapshot(), state };
    if (bucket === undefined) this.#buckets.set(key, [entry]);
    else bucket.push(entry);
    const bytes = entry.linearized.byteLength + ENTRY_OVERHEAD_BYTES + (bucket ? 0 : key.length * 2);
    return this.#budget.spendCacheBytes(bytes) ? 'added' : 'full';
  }
}
