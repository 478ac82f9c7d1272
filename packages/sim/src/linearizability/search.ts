import { Bitset } from './bitset.js';
import type { Budget } from './budget.js';
import { SearchCache } from './cache.js';
import { EntryList, HEAD, NIL } from './entry-list.js';
import type { Operation } from './history.js';
import type { Model } from './model.js';

/** Where the deepest search path got stuck: what it had linearized, and what then blocked it. */
export interface StuckPoint {
  /** Op ids (indices into the partition) in linearization order. */
  readonly prefix: readonly number[];
  /** The op whose return was reached without it being linearized. */
  readonly blockingOpId: number;
}

export type PartitionOutcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'illegal'; readonly stuck: StuckPoint }
  | { readonly kind: 'exhausted'; readonly reason: string };

/** Returned instead of a node when the cache budget ran out; distinct from NIL (list end). */
const CACHE_FULL = -2;

interface Frame<State> {
  readonly callNode: number;
  readonly stateBefore: State;
}

/**
 * The mutable state of one depth-first search over one partition (Wing & Gong, with Lowe's
 * memoisation, as in Porcupine): repeatedly linearize the earliest pending call the model
 * accepts; when a return is reached first, that op can no longer be placed, so backtrack.
 */
class PartitionSearch<State, Input, Output> {
  readonly #model: Model<State, Input, Output>;
  readonly #ops: readonly Operation<Input, Output>[];
  readonly #budget: Budget;
  readonly #list: EntryList;
  readonly #linearized: Bitset;
  readonly #cache: SearchCache<State>;
  readonly #stack: Frame<State>[] = [];
  #state: State;
  #deepest: StuckPoint = { prefix: [], blockingOpId: NIL };

  constructor(model: Model<State, Input, Output>, ops: readonly Operation<Input, Output>[], budget: Budget) {
    this.#model = model;
    this.#ops = ops;
    this.#budget = budget;
    this.#list = new EntryList(ops);
    this.#linearized = new Bitset(ops.length);
    this.#cache = new SearchCache(model, budget);
    this.#state = model.init();
  }

  run(): PartitionOutcome {
    let node = this.#list.next(HEAD);
    while (!this.#list.isEmpty()) {
      if (!this.#budget.spendStep()) return this.#exhausted();
      // Every call's return follows it in the list, so a scan cannot run off the end.
      if (node === NIL) throw new Error('linearizability search ran past the last event');
      if (this.#list.isCall(node)) {
        node = this.#tryLinearize(node);
        if (node === CACHE_FULL) return this.#exhausted();
        continue;
      }
      // The first remaining return. Returns are sorted, so if it is an unknown outcome's
      // (time Infinity), every op left is unknown: leaving them all out is a valid ending.
      if (this.#opAt(this.#list.opOf(node)).output === undefined) return { kind: 'ok' };
      this.#noteStuck(node);
      const frame = this.#stack.pop();
      if (frame === undefined) return { kind: 'illegal', stuck: this.#deepest };
      node = this.#undo(frame);
    }
    return { kind: 'ok' };
  }

  /** Tries one call; returns the next node to visit, or CACHE_FULL when memory ran out. */
  #tryLinearize(callNode: number): number {
    const opId = this.#list.opOf(callNode);
    const op = this.#opAt(opId);
    const result = this.#model.step(this.#state, op.input, op.output);
    if (!result.ok) return this.#list.next(callNode);
    this.#linearized.set(opId);
    const added = this.#cache.add(this.#linearized, result.state);
    if (added !== 'added') {
      this.#linearized.clear(opId);
      return added === 'full' ? CACHE_FULL : this.#list.next(callNode);
    }
    this.#stack.push({ callNode, stateBefore: this.#state });
    this.#state = result.state;
    this.#list.lift(callNode);
    return this.#list.next(HEAD);
  }

  /** Un-linearizes the most recent op and resumes with the call after it. */
  #undo(frame: Frame<State>): number {
    this.#list.unlift(frame.callNode);
    this.#linearized.clear(this.#list.opOf(frame.callNode));
    this.#state = frame.stateBefore;
    return this.#list.next(frame.callNode);
  }

  /** Keeps the deepest dead end for the report; copying only on a new record bounds the cost. */
  #noteStuck(returnNode: number): void {
    const hasRecord = this.#deepest.blockingOpId !== NIL;
    if (hasRecord && this.#stack.length <= this.#deepest.prefix.length) return;
    this.#deepest = {
      prefix: this.#stack.map((f) => this.#list.opOf(f.callNode)),
      blockingOpId: this.#list.opOf(returnNode),
    };
  }

  #exhausted(): PartitionOutcome {
    return { kind: 'exhausted', reason: this.#budget.exhaustedReason ?? 'search budget exhausted' };
  }

  #opAt(opId: number): Operation<Input, Output> {
    const op = this.#ops[opId];
    if (op === undefined) throw new Error(`linearizability search lost op ${opId}`);
    return op;
  }
}

/** Searches one partition for a linearization, within the shared budget. */
export function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  budget: Budget,
): PartitionOutcome {
  return new PartitionSearch(model, ops, budget).run();
}
