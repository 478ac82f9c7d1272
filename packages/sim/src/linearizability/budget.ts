/** How often, in steps, the search reads the clock: often enough to stop promptly, rarely enough to be free. */
const CLOCK_CHECK_INTERVAL_STEPS = 1024;

/**
 * The work one `checkLinearizable` call may do, shared by all its partitions so the total
 * is bounded no matter how the history splits.
 */
export class Budget {
  readonly #stepsMax: number;
  readonly #cacheBytesMax: number;
  readonly #deadlineMs: number;
  #steps = 0;
  #cacheBytes = 0;
  #exhaustedReason: string | undefined;

  constructor(limits: { stepsMax: number; cacheBytesMax: number; timeBudgetMs: number | undefined }) {
    this.#stepsMax = limits.stepsMax;
    this.#cacheBytesMax = limits.cacheBytesMax;
    this.#deadlineMs =
      limits.timeBudgetMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + limits.timeBudgetMs;
  }

  get steps(): number {
    return this.#steps;
  }

  /** Why the budget ran out, or undefined while work remains. */
  get exhaustedReason(): string | undefined {
    return this.#exhaustedReason;
  }

  /** Spends one search step; false once any limit is exceeded. */
  spendStep(): boolean {
    if (this.#exhaustedReason !== undefined) return false;
    this.#steps++;
    if (this.#steps > this.#stepsMax) {
      this.#exhaustedReason = `search exceeded stepsMax (${this.#stepsMax})`;
    } else if (this.#steps % CLOCK_CHECK_INTERVAL_STEPS === 0 && performance.now() > this.#deadlineMs) {
      this.#exhaustedReason = `search exceeded timeBudgetMs after ${this.#steps} steps`;
    }
    return this.#exhaustedReason === undefined;
  }

  /** Accounts for memoisation memory; false once `cacheBytesMax` is exceeded. */
  spendCacheBytes(bytes: number): boolean {
    this.#cacheBytes += bytes;
    if (this.#cacheBytes > this.#cacheBytesMax && this.#exhaustedReason === undefined) {
      this.#exhaustedReason = `memoisation cache exceeded cacheBytesMax (${this.#cacheBytesMax})`;
    }
    return this.#exhaustedReason === undefined;
  }
}
