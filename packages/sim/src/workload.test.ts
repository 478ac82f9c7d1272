import { describe, expect, it } from 'vitest';
import { Cluster } from './cluster.js';
import { checkLinearizable, type KvOperation, kvModel } from './linearizability/index.js';
import { Workload } from './workload.js';

describe('Workload', () => {
  it('runs clients over every path, and the history it records is linearizable', () => {
    const cluster = Cluster.create({ seed: 21, nodes: 3, snapshotThresholdEntries: 20 });
    const workload = new Workload({ cluster, seed: 21, workload: { clients: 5, keys: 2 } });
    workload.start();
    cluster.advance(3_000);
    workload.stop();
    expect(cluster.runUntil(() => workload.pendingCount === 0, { timeoutMs: 5_000 })).toBe(true);
    const stats = workload.stats();
    expect(stats.completed).toBeGreaterThan(100);
    expect(stats.abandoned).toBe(0);
    for (const path of ['write', 'log', 'quorum', 'lease'] as const)
      expect(stats.byPath[path]).toBeGreaterThan(10);
    const history = workload.history();
    expect(history).toHaveLength(stats.invoked);
    expect(checkLinearizable(kvModel, history, { stepsMax: 1_000_000 }).result).toBe('ok');
    // Some CAS operations succeed and some fail: the workload exercises both outcomes.
    const cas = history.filter((op) => op.input.kind === 'cas' && op.output !== undefined);
    expect(cas.some((op) => op.output !== undefined && 'ok' in op.output && op.output.ok)).toBe(true);
    expect(cas.some((op) => op.output !== undefined && 'ok' in op.output && !op.output.ok)).toBe(true);
  });

  it('is caught by the checker when a read returns a stale value', () => {
    const cluster = Cluster.create({ seed: 22, nodes: 3 });
    const workload = new Workload({
      cluster,
      seed: 22,
      workload: { clients: 3, keys: 1, mix: { get: 1, put: 1, cas: 0 } },
    });
    workload.start();
    cluster.advance(2_000);
    workload.stop();
    cluster.runUntil(() => workload.pendingCount === 0, { timeoutMs: 5_000 });
    const history = workload.history();
    // Rewrite the last read that saw a value to see the first value ever written instead.
    const firstPut = history.find((op) => op.input.kind === 'put');
    const lastIndex = history.findLastIndex(
      (op) =>
        op.input.kind === 'get' &&
        op.output !== undefined &&
        'value' in op.output &&
        op.output.value !== null,
    );
    const lastRead = history[lastIndex];
    if (firstPut === undefined || firstPut.input.kind !== 'put' || lastRead === undefined)
      throw new Error('no ops');
    const tampered: KvOperation[] = history.map((op, i) =>
      i === lastIndex
        ? { ...lastRead, output: { value: firstPut.input.kind === 'put' ? firstPut.input.value : null } }
        : op,
    );
    expect(checkLinearizable(kvModel, history, { stepsMax: 1_000_000 }).result).toBe('ok');
    expect(checkLinearizable(kvModel, tampered, { stepsMax: 1_000_000 }).result).toBe('illegal');
  });

  it('gives up after its attempts when no node answers, recording unknown outcomes', () => {
    const cluster = Cluster.create({ seed: 23, nodes: 3 });
    for (let i = 0; i < 3; i++) cluster.crash(i);
    const workload = new Workload({
      cluster,
      seed: 23,
      workload: { clients: 2, attemptsMax: 4, opTimeoutMs: 1_000, thinkMaxMs: 0 },
    });
    workload.start();
    cluster.advance(500);
    workload.stop();
    cluster.advance(2_000);
    const stats = workload.stats();
    expect(stats.invoked).toBeGreaterThan(2);
    expect(stats.completed).toBe(0);
    expect(stats.abandoned).toBe(stats.invoked);
    expect(workload.pendingCount).toBe(0);
    // Abandoned writes stay in the history with unknown outcomes.
    const writes = workload.history().filter((op) => op.input.kind !== 'get');
    expect(writes.every((op) => op.output === undefined && op.return === Number.POSITIVE_INFINITY)).toBe(
      true,
    );
  });
});
