import { describe, expect, it } from 'vitest';
import { type KvTarget, keyOf, operationOf, preload, type ReadConsistency, runCell } from './kv-workload.js';

interface Call {
  readonly kind: 'put' | 'get';
  readonly server: number;
  readonly key: string;
  readonly valueBytes?: number;
  readonly consistency?: ReadConsistency;
}

/** Records every request; `failPut` decides which puts throw. */
function recordingTarget(options: { serverCount: number; failPut?: (key: string) => boolean }) {
  const calls: Call[] = [];
  const target: KvTarget = {
    serverCount: options.serverCount,
    put: async ({ server, key, value }) => {
      calls.push({ kind: 'put', server, key, valueBytes: value.byteLength });
      if (options.failPut?.(key)) throw new Error(`refused ${key}`);
    },
    get: async ({ server, key, consistency }) => {
      calls.push({ kind: 'get', server, key, consistency });
    },
    close: async () => undefined,
  };
  return { target, calls };
}

describe('the HTTP workload', () => {
  it('spreads requests round robin over the servers and walks the key space', async () => {
    const { target, calls } = recordingTarget({ serverCount: 3 });
    const put = operationOf({ target, op: 'put', workload: { keyCount: 4, valueBytes: 256 } });
    for (let sequence = 0; sequence < 6; sequence++) await put(sequence);
    expect(calls.map((c) => c.server)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(calls.map((c) => c.key)).toEqual([0, 1, 2, 3, 0, 1].map((i) => keyOf(i, 4)));
    expect(calls.every((c) => c.valueBytes === 256)).toBe(true);
  });

  it('maps each read op to its consistency', async () => {
    const { target, calls } = recordingTarget({ serverCount: 3 });
    const workload = { keyCount: 10, valueBytes: 8 };
    await operationOf({ target, op: 'get-default', workload })(0);
    await operationOf({ target, op: 'get-consistent', workload })(0);
    await operationOf({ target, op: 'get-stale', workload })(0);
    expect(calls.map((c) => c.consistency)).toEqual(['default', 'consistent', 'stale']);
  });

  it('names keys with a fixed width, so every key has the same size', () => {
    expect(keyOf(7, 10_000)).toBe('bench-000007');
    expect(keyOf(10_007, 10_000)).toBe('bench-000007');
    expect(keyOf(9_999, 10_000).length).toBe(keyOf(0, 10_000).length);
  });

  it('preloads every key exactly once when nothing fails', async () => {
    const { target, calls } = recordingTarget({ serverCount: 3 });
    await preload({ target, workload: { keyCount: 100, valueBytes: 16 }, inFlight: 7 });
    const keys = calls.map((c) => c.key);
    expect(new Set(keys).size).toBe(100);
    expect(keys.length).toBe(100);
  });

  it('retries a refused preload write, and gives up on a key that never succeeds', async () => {
    let refusals = 2;
    const flaky = recordingTarget({
      serverCount: 3,
      failPut: (key) => key === keyOf(5, 10) && refusals-- > 0,
    });
    await preload({
      target: flaky.target,
      workload: { keyCount: 10, valueBytes: 16 },
      inFlight: 2,
      retryDelayMs: 0,
    });
    expect(flaky.calls.filter((c) => c.key === keyOf(5, 10)).length).toBe(3);

    const broken = recordingTarget({ serverCount: 3, failPut: (key) => key === keyOf(3, 10) });
    await expect(
      preload({
        target: broken.target,
        workload: { keyCount: 10, valueBytes: 16 },
        inFlight: 2,
        retryDelayMs: 0,
      }),
    ).rejects.toThrow(/preloading bench-000003 failed 5 times: refused bench-000003/);
  });

  it('runs a warm-up before the measured cell, and measures only the cell', async () => {
    const { target, calls } = recordingTarget({ serverCount: 3 });
    const result = await runCell({
      target,
      op: 'get-stale',
      inFlight: 2,
      workload: { keyCount: 10, valueBytes: 8 },
      warmupMs: 60_000,
      durationMs: 60_000,
      opsMax: 50,
    });
    // The op budget bounds both phases: 50 warm-up requests, then 50 measured ones.
    expect(calls.length).toBe(100);
    expect(result.ops).toBe(50);
  });
});
