/**
 * A min-heap of events ordered by virtual time, then by insertion sequence. The sequence
 * makes ties deterministic: two events due at the same millisecond run in the order they
 * were scheduled, whatever the heap's internal layout.
 */
export interface Scheduled<T> {
  readonly atMs: number;
  /** Insertion order, unique per queue. */
  readonly seq: number;
  readonly event: T;
}

export class EventQueue<T> {
  readonly #heap: Scheduled<T>[] = [];
  #nextSeq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(options: { atMs: number; event: T }): Scheduled<T> {
    if (!Number.isFinite(options.atMs)) throw new RangeError(`EventQueue.push: bad time ${options.atMs}`);
    const item: Scheduled<T> = { atMs: options.atMs, seq: this.#nextSeq++, event: options.event };
    const heap = this.#heap;
    heap.push(item);
    this.#siftUp(heap.length - 1);
    return item;
  }

  peek(): Scheduled<T> | undefined {
    return this.#heap[0];
  }

  pop(): Scheduled<T> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  clear(): void {
    this.#heap.length = 0;
  }

  #siftUp(start: number): void {
    const heap = this.#heap;
    let i = start;
    const item = heap[i];
    if (item === undefined) return;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex];
      if (parent === undefined || !before(item, parent)) break;
      heap[i] = parent;
      i = parentIndex;
    }
    heap[i] = item;
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const n = heap.length;
    let i = start;
    const item = heap[i];
    if (item === undefined) return;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const leftItem = heap[left];
      const rightItem = heap[right];
      if (leftItem === undefined) break;
      const child = rightItem !== undefined && before(rightItem, leftItem) ? right : left;
      const childItem = child === right ? rightItem : leftItem;
      if (childItem === undefined || !before(childItem, item)) break;
      heap[i] = childItem;
      i = child;
    }
    heap[i] = item;
  }
}

function before<T>(a: Scheduled<T>, b: Scheduled<T>): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
