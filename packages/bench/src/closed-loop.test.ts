import { describe, expect, it } from 'vitest';
import { percentile } from './bench-stats.js';
import { runClosedLoop } from './closed-loop.js';

/** A clock the test advances: each operation takes `costMs(sequence)` of it. */
function fakeClock() {
  let nowMs = 0;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

describe('runClosedLoop', () => {
  it('keeps exactly inFlight requests outstanding and stops at the op budget', async () => {
    let outstanding = 0;
    let peak = 0;
    const seen: number[] = [];
    const result = await runClosedLoop({
      inFlight: 8,
      durationMs: 60_000,
      opsMax: 100,
      operation: async (sequence) => {
        outstanding++;
        peak = Math.max(peak, outstanding);
        seen.push(sequence);
        // Yield twice so every worker has started before any finishes.
        await Promise.resolve();
        await new Promise((resolve) => setImmediate(resolve));
        outstanding--;
      },
    });
    expect(peak).toBe(8);
    expect(result.inFlightPeak).toBe(8);
    expect(result.ops).toBe(100);
    expect(result.errors).toBe(0);
    // Every sequence number is handed out once, from 0 up.
    expect([...seen].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
  });

  it('stops at the deadline, and measures rate and latency on its clock', async () => {
    const clock = fakeClock();
    const result = await runClosedLoop({
      inFlight: 1,
      durationMs: 1000,
      opsMax: 1_000_000,
      now: clock.now,
      operation: async (sequence) => {
        // 1 ms per op, but every tenth op takes 10 ms: p50 is 1 ms, p99 is 10 ms.
        clock.advance(sequence % 10 === 9 ? 10 : 1);
      },
    });
    // 10 ops per 19 ms: 52 rounds reach 988 ms, then ops 520-529 start before 1000 ms and
    // the last (a slow one) ends at 1007 ms; no op starts after the deadline.
    expect(result.ops).toBe(530);
    expect(result.elapsedMs).toBe(1007);
    expect(result.opsPerSecond).toBe(Math.round((530 / 1007) * 1000));
    expect(result.p50LatencyMs).toBe(1);
    expect(result.p99LatencyMs).toBe(10);
  });

  it('counts failures as errors, keeps the first message, and leaves them out of the latencies', async () => {
    const clock = fakeClock();
    // One worker: with several, a shared fake clock would charge one op's time to another.
    const result = await runClosedLoop({
      inFlight: 1,
      durationMs: 60_000,
      opsMax: 40,
      now: clock.now,
      operation: async (sequence) => {
        if (sequence % 4 === 0) {
          clock.advance(1000);
          throw new Error(`refused ${sequence}`);
        }
        clock.advance(2);
      },
    });
    expect(result.errors).toBe(10);
    expect(result.ops).toBe(30);
    expect(result.firstError).toBe('refused 0');
    // Only successful ops (2 ms each) are in the percentiles, never the slow failures.
    expect(result.p99LatencyMs).toBe(2);
  });

  it('refuses limits out of range', async () => {
    const operation = async () => undefined;
    await expect(runClosedLoop({ inFlight: 0, durationMs: 1, opsMax: 1, operation })).rejects.toThrow(
      /inFlight/,
    );
    await expect(runClosedLoop({ inFlight: 1, durationMs: 1, opsMax: 0, operation })).rejects.toThrow(
      /opsMax/,
    );
    await expect(runClosedLoop({ inFlight: 1, durationMs: 0, opsMax: 1, operation })).rejects.toThrow(
      /durationMs/,
    );
  });
});

describe('percentile', () => {
  it('is the nearest rank: the smallest value with at least p% of values at or below it', () => {
    const values = Float64Array.from([...Array(100).keys()].map((i) => i + 1));
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });
});
