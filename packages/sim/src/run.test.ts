import { describe, expect, it } from 'vitest';
import { allFaultKinds } from './faults.js';
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
