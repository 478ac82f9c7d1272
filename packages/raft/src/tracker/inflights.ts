import { assert } from '../errors.js';

/**
 * The AppendEntries messages sent to one follower and not yet acknowledged, by the last
 * index each carried. A ring buffer of fixed capacity bounds the pipeline to a follower.
 */
export class Inflights {
  private readonly lastIndexes: Float64Array;
  private start = 0;
  private count = 0;

  constructor(readonly capacityMessages: number) {
    assert(capacityMessages > 0, 'Inflights capacity must be positive');
    this.lastIndexes = new Float64Array(capacityMessages);
  }

  get size(): number {
    return this.count;
  }

  isFull(): boolean {
    return this.count === this.capacityMessages;
  }

  add(lastIndex: number): void {
    assert(!this.isFull(), 'Inflights.add on a full window');
    const newest = this.count > 0 ? this.at(this.count - 1) : -1;
    assert(lastIndex > newest, () => `Inflights.add(${lastIndex}) not above newest ${newest}`);
    this.lastIndexes[(this.start + this.count) % this.capacityMessages] = lastIndex;
    this.count++;
  }

  /** Forget every message whose last index is at or below `index`: the follower has them. */
  freeLE(index: number): void {
    while (this.count > 0 && this.at(0) <= index) {
      this.start = (this.start + 1) % this.capacityMessages;
      this.count--;
    }
  }

  /** Forget the oldest message, to make room for one more. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacityMessages;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }

  private at(offset: number): number {
    const value = this.lastIndexes[(this.start + offset) % this.capacityMessages];
    assert(value !== undefined, 'Inflights index out of range');
    return value;
  }
}
