/**
 * A closed-loop load generator: `inFlight` workers, each sending its next request as soon as
 * the previous one answers, until the duration or the op budget runs out. Closed loop means
 * the measured rate is what the system sustains at that concurrency, and latency includes
 * no client-side queueing.
 */
import { performance } from 'node:perf_hooks';
import { percentile, round } from './bench-stats.js';

export interface ClosedLoopOptions {
  readonly inFlight: number;
  readonly durationMs: number;
  /** Bounds the ops (and the latency buffer) of one run, whatever the duration. */
  readonly opsMax: number;
  /** One request; `sequence` counts from 0 across all workers. Throwing counts as an error. */
  readonly operation: (sequence: number) => Promise<void>;
  /** The clock, in ms; tests pass their own. */
  readonly now?: () => number;
}

export interface ClosedLoopResult {
  /** Requests that succeeded; only these count in the rate and the latencies. */
  readonly ops: number;
  readonly errors: number;
  /** The first error's message, so a failing cell says why. */
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly opsPerSecond: number;
  readonly p50LatencyMs: number;
  readonly p99LatencyMs: number;
  /** The most requests that were outstanding at once (must equal inFlight under load). */
  readonly inFlightPeak: number;
}

const inFlightMax = 4096;
const opsMaxLimit = 10_000_000;

export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const { inFlight, durationMs, opsMax, operation } = options;
  if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > inFlightMax) {
    throw new Error(`inFlight must be an integer in [1, ${inFlightMax}], got ${inFlight}`);
  }
  if (!Number.isInteger(opsMax) || opsMax < 1 || opsMax > opsMaxLimit) {
    throw new Error(`opsMax must be an integer in [1, ${opsMaxLimit}], got ${opsMax}`);
  }
  if (!(durationMs > 0)) throw new Error(`durationMs must be positive, got ${durationMs}`);
  const now = options.now ?? (() => performance.now());
  const latenciesMs = new Float64Array(opsMax);
  let ops = 0;
  let errors = 0;
  let firstError: string | null = null;
  let started = 0;
  let outstanding = 0;
  let inFlightPeak = 0;
  const begin = now();
  const deadline = begin + durationMs;
  const worker = async (): Promise<void> => {
    // Errors also use up the op budget, so a server refusing everything cannot spin forever.
    while (started < opsMax && now() < deadline) {
      const sequence = started++;
      outstanding++;
      inFlightPeak = Math.max(inFlightPeak, outstanding);
      const t0 = now();
      try {
        await operation(sequence);
        latenciesMs[ops++] = now() - t0;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      } finally {
        outstanding--;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, () => worker()));
  const elapsedMs = now() - begin;
  const sorted = latenciesMs.subarray(0, ops).sort();
  return {
    ops,
    errors,
    firstError,
    elapsedMs: round(elapsedMs, 1),
    opsPerSecond: elapsedMs > 0 ? Math.round((ops / elapsedMs) * 1000) : 0,
    p50LatencyMs: round(percentile(sorted, 50), 3),
    p99LatencyMs: round(percentile(sorted, 99), 3),
    inFlightPeak,
  };
}
