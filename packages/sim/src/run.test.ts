import { describe, expect, it } from 'vitest';
import { allFaultKinds } from './faults.js';
import { defaultMembershipChurnOptions } from './membership.js';
import { runSeed } from './run.js';

describe('runSeed', () => {
  it('passes a fault-free run with a linearizable history', () => {
    const result = runSeed({ seed: 1, nodes: 3, faults: [], faultPhaseMs: 3_000 });
    expect(result.failure).toBeNull();
    expect(result.ok).toBe(true);
    expect(result.linearizability).toBe('ok');
    expect(result.workload.completed).toBeGreaterThan(50);
    expect(result.faultLog).toHaveLength(0);
    expect(result.recoveryMs).not.toBeNull();
  });

  it.each([
    [3, 2],
    [5, 4],
  ])('survives every fault kind (%i nodes, seed %i)', (nodes, seed) => {
    const result = runSeed({ seed, nodes, faults: allFaultKinds });
    expect(result.failure).toBeNull();
    expect(result.linearizability).toBe('ok');
    expect(result.faultLog.length).toBeGreaterThan(5);
    expect(result.leaderTerms).toBeGreaterThan(1);
  });

  it.each([
    [3, 5],
    [5, 6],
  ])('survives membership churn and leadership transfers (%i nodes, seed %i)', (nodes, seed) => {
    const result = runSeed({ seed, nodes, faults: ['membership', 'transfer', 'crash'] });
    expect(result.failure).toBeNull();
    expect(result.linearizability).toBe('ok');
    expect(result.faultLog.some((line) => /membership wipe n\d/.test(line))).toBe(true);
    expect(result.faultLog.some((line) => /membership rejoin n\d empty/.test(line))).toBe(true);
    expect(result.faultLog.some((line) => / transfer n\d>n\d/.test(line))).toBe(true);
    expect(result.recoveryMs).not.toBeNull();
  });

  it.each([
    [3, 162],
    [5, 259],
  ])(
    'keeps a rejoining node apart from its old incarnation under fast churn (%i nodes, seed %i)',
    (nodes, seed) => {
      // Regression: these seeds once rejoined a wiped node while a long-delayed heartbeat to
      // its old incarnation was in flight; the empty node was asked to commit entries it
      // never held, and the core stopped on its commit invariant.
      const result = runSeed({
        seed,
        nodes,
        faults: allFaultKinds,
        schedule: {
          gapMinMs: 20,
          gapMaxMs: 200,
          membership: {
            ...defaultMembershipChurnOptions({ nodes }),
            removedRunningMaxMs: 300,
            wipedMinMs: 0,
            wipedMaxMs: 300,
            learnerMaxMs: 300,
            proposalWaitMs: 400,
            leaderTargetRate: 0.5,
          },
        },
      });
      expect(result.failure).toBeNull();
      expect(result.faultLog.some((line) => /membership rejoin n\d empty/.test(line))).toBe(true);
    },
  );

  it('is deterministic: same seed, same trace hash; another seed, another hash', () => {
    const options = { nodes: 5, faults: allFaultKinds, faultPhaseMs: 3_000 } as const;
    const a = runSeed({ seed: 7, ...options });
    const b = runSeed({ seed: 7, ...options });
    const c = runSeed({ seed: 8, ...options });
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.stats).toEqual(a.stats);
    expect(b.faultLog).toEqual(a.faultLog);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('keeps the trace lines when asked, and they hash to the reported hash', async () => {
    const { createHash } = await import('node:crypto');
    const result = runSeed({ seed: 9, nodes: 3, faults: ['net'], faultPhaseMs: 1_000, keepTrace: true });
    expect(result.traceLines.length).toBeGreaterThan(100);
    const hash = createHash('sha256');
    for (const line of result.traceLines) hash.update(`${line}\n`);
    expect(hash.digest('hex')).toBe(result.traceHash);
  });
});
