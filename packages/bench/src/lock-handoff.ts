/**
 * Lock hand-off under contention: N contenders, each with its own client (its own session
 * or lease), loop acquire -> hold -> release on one lock until the duration ends.
 *
 * **Hand-off latency**, precisely: for every grant but the first, the time from the moment
 * the previous holder *starts* its release call (just before the call is made, after it
 * stopped holding) to the moment the next holder's acquire call *returns* to it (just after
 * its promise resolves), both read from one monotonic clock in this process. It therefore
 * contains the release's round trip to the store up to its commit, the store's passing of
 * the lock on, telling the next waiter (a blocking read, a watch event, …) and that waiter's
 * own round trips until its acquire returns. Only grants whose acquire returned before the
 * deadline count; contenders still in line then get the lock once more, release it and stop.
 *
 * A grant that comes back to the contender that released last is counted as a hand-off too
 * (a fair lock with other waiters never does that; a try-lock may), and reported as
 * `selfHandoffs`. Every contender holds the lock across one turn of the event loop, and a
 * grant seen while another contender holds it counts as an exclusion violation: the run
 * checks mutual exclusion as it measures.
 */
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { percentile, round } from './bench-stats.js';
import type { CaseMeasurement } from './primitives-results.js';

export interface Contender {
  /** Resolves once this contender holds the lock (waiting in line as long as it takes). */
  acquire(): Promise<void>;
  /** Releases the lock this contender holds. */
  release(): Promise<void>;
}

export interface HandoffOptions {
  readonly contenders: readonly Contender[];
  readonly durationMs: number;
  /** Bounds the latency buffer whatever the duration. */
  readonly handoffsMax: number;
  /** The whole run fails if it has not ended this long after the deadline. */
  readonly drainTimeoutMs: number;
  /** The clock, in ms; tests pass their own. */
  readonly now?: () => number;
}

export interface HandoffResult extends CaseMeasurement {
  readonly selfHandoffs: number;
  readonly exclusionViolations: number;
  readonly elapsedMs: number;
}

export async function runHandoffs(options: HandoffOptions): Promise<HandoffResult> {
  const { contenders, durationMs, handoffsMax } = options;
  if (contenders.length < 2)
    throw new Error(`a hand-off needs at least 2 contenders, got ${contenders.length}`);
  if (!(durationMs > 0)) throw new Error(`durationMs must be positive, got ${durationMs}`);
  const now = options.now ?? (() => performance.now());
  const latenciesMs = new Float64Array(handoffsMax);
  let handoffs = 0;
  let selfHandoffs = 0;
  let exclusionViolations = 0;
  let errors = 0;
  let firstError: string | null = null;
  let holder: number | null = null;
  let lastRelease: { at: number; by: number } | null = null;
  const begin = now();
  const deadline = begin + durationMs;
  const fail = (error: unknown) => {
    errors++;
    firstError ??= error instanceof Error ? error.message : String(error);
  };
  const contend = async (contender: Contender, id: number): Promise<void> => {
    while (now() < deadline && handoffs < handoffsMax) {
      try {
        await contender.acquire();
      } catch (error) {
        // A contender whose acquire failed holds nothing: it stops, the others go on.
        fail(error);
        return;
      }
      const grantedAt = now();
      if (holder !== null) exclusionViolations++;
      holder = id;
      if (lastRelease !== null && grantedAt < deadline && handoffs < handoffsMax) {
        latenciesMs[handoffs++] = grantedAt - lastRelease.at;
        if (lastRelease.by === id) selfHandoffs++;
      }
      // Hold across a turn of the event loop, so an overlapping grant would be seen.
      await nextTurn();
      if (holder === id) holder = null;
      else exclusionViolations++;
      lastRelease = { at: now(), by: id };
      try {
        await contender.release();
      } catch (error) {
        fail(error);
        return;
      }
    }
  };
  const all = Promise.all(contenders.map((c, i) => contend(c, i)));
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `lock hand-off: contenders still running ${options.drainTimeoutMs} ms after the deadline`,
          ),
        ),
      durationMs + options.drainTimeoutMs,
    );
  });
  try {
    await Promise.race([all, stuck]);
  } finally {
    clearTimeout(timer);
  }
  const elapsedMs = Math.min(now(), deadline) - begin;
  const sorted = latenciesMs.subarray(0, handoffs).sort();
  return {
    ops: handoffs,
    errors,
    firstError,
    opsPerSecond: elapsedMs > 0 ? Math.round((handoffs / elapsedMs) * 1000) : 0,
    p50LatencyMs: round(percentile(sorted, 50), 3),
    p99LatencyMs: round(percentile(sorted, 99), 3),
    selfHandoffs,
    exclusionViolations,
    elapsedMs: round(elapsedMs, 1),
  };
}
