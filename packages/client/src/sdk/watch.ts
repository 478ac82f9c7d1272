/** One read of a watch: its value, and the index to pass back to wait for the next change. */
export interface WatchedRead<T> {
  readonly value: T;
  readonly index: number;
}

/**
 * The value `read` returns now, then again each time its index moves, by blocking reads
 * (`index`, `waitMs`): no polling, and no change is missed, though changes that come close
 * together may be seen as one. Aborting `signal` ends the iteration (it returns, it does
 * not throw); a read that fails after the transport's retries ends it with that error.
 */
export async function* watchReads<T>(options: {
  read: (placement: { index: number; waitMs: number; signal?: AbortSignal }) => Promise<WatchedRead<T>>;
  signal?: AbortSignal;
  /** Start after this index (0: yield the current value first). */
  index?: number;
  waitMs: number;
}): AsyncGenerator<T, void, undefined> {
  const { read, signal, waitMs } = options;
  let index = options.index ?? 0;
  const aborted = () => signal?.aborted === true;
  while (!aborted()) {
    let answer: WatchedRead<T>;
    try {
      answer = await read({ index, waitMs, ...(signal === undefined ? {} : { signal }) });
    } catch (error) {
      if (aborted()) return;
      throw error;
    }
    // An index that went back (a restored snapshot, another group's server) counts as a
    // change, as Consul's clients treat it: start over from the new one.
    if (answer.index === index) continue;
    index = answer.index;
    yield answer.value;
  }
}
