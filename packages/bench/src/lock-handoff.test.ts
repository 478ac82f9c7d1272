import { describe, expect, it } from 'vitest';
import { type Contender, runHandoffs } from './lock-handoff.js';

/**
 * An in-memory FIFO lock that passes itself on `handoffMs` after a release (or at once
 * when free); `exclusive: false` makes a broken one that grants everyone at once.
 */
function fakeLock(options: { handoffMs: number; exclusive?: boolean }) {
  let held = false;
  const waiting: (() => void)[] = [];
  const grant = () => {
    const next = waiting.shift();
    if (next === undefined) held = false;
    else next();
  };
  return (count: number): Contender[] =>
    Array.from({ length: count }, () => ({
      acquire: () =>
        new Promise<void>((resolve) => {
          if (!held || options.exclusive === false) {
            held = true;
            resolve();
          } else waiting.push(resolve);
        }),
      release: async () => {
        setTimeout(grant, options.handoffMs);
      },
    }));
}

describe('runHandoffs', () => {
  it('times each hand-off from the release call to the next grant, with every grant exclusive', async () => {
    const contenders = fakeLock({ handoffMs: 5 })(4);
    const result = await runHandoffs({
      contenders,
      durationMs: 200,
      handoffsMax: 10_000,
      drainTimeoutMs: 5000,
    });
    expect(result.errors).toBe(0);
    expect(result.exclusionViolations).toBe(0);
    expect(result.selfHandoffs).toBe(0);
    expect(result.ops).toBeGreaterThan(5);
    // A timer fires no earlier than asked, and a loaded machine may add a lot.
    expect(result.p50LatencyMs).toBeGreaterThanOrEqual(4.5);
    expect(result.p99LatencyMs).toBeGreaterThanOrEqual(result.p50LatencyMs);
    expect(result.opsPerSecond).toBeGreaterThan(0);
  });

  it('counts grants that overlap another holder', async () => {
    const contenders = fakeLock({ handoffMs: 1, exclusive: false })(3);
    const result = await runHandoffs({
      contenders,
      durationMs: 50,
      handoffsMax: 10_000,
      drainTimeoutMs: 5000,
    });
    expect(result.exclusionViolations).toBeGreaterThan(0);
  });

  it('stops a contender whose acquire fails, and reports why', async () => {
    const [good] = fakeLock({ handoffMs: 1 })(1);
    if (good === undefined) throw new Error('no contender');
    const failing: Contender = {
      acquire: () => Promise.reject(new Error('no quorum')),
      release: async () => undefined,
    };
    const result = await runHandoffs({
      contenders: [good, failing],
      durationMs: 50,
      handoffsMax: 10_000,
      drainTimeoutMs: 5000,
    });
    expect(result.errors).toBe(1);
    expect(result.firstError).toBe('no quorum');
    // The one left re-takes its own lock: every hand-off is a self hand-off.
    expect(result.selfHandoffs).toBe(result.ops);
  });

  it('fails when the contenders do not stop after the deadline', async () => {
    const stuck: Contender = {
      acquire: () => new Promise<void>(() => undefined),
      release: async () => undefined,
    };
    await expect(
      runHandoffs({ contenders: [stuck, stuck], durationMs: 10, handoffsMax: 100, drainTimeoutMs: 50 }),
    ).rejects.toThrow(/still running/);
  });

  it('refuses fewer than two contenders', async () => {
    await expect(
      runHandoffs({
        contenders: fakeLock({ handoffMs: 1 })(1),
        durationMs: 10,
        handoffsMax: 10,
        drainTimeoutMs: 10,
      }),
    ).rejects.toThrow(/at least 2/);
  });
});
