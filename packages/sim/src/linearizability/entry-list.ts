import type { Operation } from './history.js';

/** End of list. */
export const NIL = -1;
/** Node 0 is a sentinel before the first event, so removal never special-cases the head. */
export const HEAD = 0;

interface TimedEvent {
  readonly time: number;
  readonly isCall: boolean;
  readonly opId: number;
}

/**
 * Orders events by time. At equal times calls come before returns, which makes an operation
 * returning at t concurrent with one called at t: we only claim "A precedes B" when
 * A.return < B.call strictly. Ties in virtual time carry no ordering information, so this
 * is the conservative choice: it can never report a violation that depends on a tie.
 */
function compareEvents(a: TimedEvent, b: TimedEvent): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
  return a.opId - b.opId;
}

function sortedEvents<I, O>(ops: readonly Operation<I, O>[]): TimedEvent[] {
  const events: TimedEvent[] = [];
  ops.forEach((op, opId) => {
    events.push({ time: op.call, isCall: true, opId });
    events.push({ time: op.return, isCall: false, opId });
  });
  return events.sort(compareEvents);
}

/**
 * The call/return events of one partition as a doubly linked list over typed arrays.
 * Linearizing an operation lifts its call and return out of the list; backtracking
 * reinserts them. Removed nodes keep their own links, which is what makes O(1) undo work.
 */
export class EntryList {
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  readonly #opOf: Int32Array;
  /** For a call node, its return node; for a return node, NIL. */
  readonly #matchOf: Int32Array;

  constructor(ops: readonly Operation<unknown, unknown>[]) {
    const size = ops.length * 2 + 1;
    this.#next = new Int32Array(size);
    this.#prev = new Int32Array(size);
    this.#opOf = new Int32Array(size).fill(NIL);
    this.#matchOf = new Int32Array(size).fill(NIL);
    this.#link(sortedEvents(ops));
  }

  next(node: number): number {
    return this.#next[node] ?? NIL;
  }

  isCall(node: number): boolean {
    return (this.#matchOf[node] ?? NIL) !== NIL;
  }

  opOf(node: number): number {
    return this.#opOf[node] ?? NIL;
  }

  isEmpty(): boolean {
    return this.next(HEAD) === NIL;
  }

  /** Removes a call node and its return node. */
  lift(callNode: number): void {
    this.#unlink(callNode);
    this.#unlink(this.#matchOf[callNode] ?? NIL);
  }

  /** Undoes `lift`; must run in reverse order of lifts, which the search stack guarantees. */
  unlift(callNode: number): void {
    // Return first: if the two were adjacent, the call's saved `next` is the return node.
    this.#relink(this.#matchOf[callNode] ?? NIL);
    this.#relink(callNode);
  }

  #link(events: readonly TimedEvent[]): void {
    const callNodeOf = new Map<number, number>();
    let previous = HEAD;
    this.#prev[HEAD] = NIL;
    events.forEach((event, index) => {
      const node = index + 1;
      this.#opOf[node] = event.opId;
      if (event.isCall) callNodeOf.set(event.opId, node);
      else this.#matchOf[callNodeOf.get(event.opId) ?? NIL] = node;
      this.#next[previous] = node;
      this.#prev[node] = previous;
      previous = node;
    });
    this.#next[previous] = NIL;
  }

  #unlink(node: number): void {
    const prev = this.#prev[node] ?? NIL;
    const next = this.#next[node] ?? NIL;
    this.#next[prev] = next;
    if (next !== NIL) this.#prev[next] = prev;
  }

  #relink(node: number): void {
    const prev = this.#prev[node] ?? NIL;
    const next = this.#next[node] ?? NIL;
    this.#next[prev] = node;
    if (next !== NIL) this.#prev[next] = node;
  }
}
