/**
 * Forming a cluster the Consul way (real processes on loopback): every server started with
 * the same flags, `--bootstrap-expect N --join <every server's address, itself included>`,
 * in a random order with random delays. Exactly one cluster must form, every time: every
 * server's every group has all N servers as voters, and one leader all agree on.
 */
import { createPrng } from '@conclave/raft';
import { ProcessCluster, waitFor } from '@conclave/testkit';
import { describe, expect, it } from 'vitest';

const groups = 4;
const tickMs = 20;
const runsPerSize = 10;
/** Upper bound of the random delay before each server starts (ms). */
const startDelayMsMax = 400;

async function formOnce(options: { size: number; seed: number }): Promise<void> {
  const prng = createPrng(options.seed);
  const cluster = await ProcessCluster.create({ size: options.size, groups, tickMs, join: 'addresses' });
  try {
    const order = [...cluster.servers];
    for (let i = order.length - 1; i > 0; i--) {
      const j = prng.nextInt(i + 1);
      [order[i], order[j]] = [order[j] as (typeof order)[number], order[i] as (typeof order)[number]];
    }
    // The stagger is the scenario (servers coming up apart), not a wait for a condition.
    await Promise.all(
      order.map(async (server) => {
        await new Promise((resolve) => setTimeout(resolve, prng.nextInt(startDelayMsMax)));
        await server.start({ timeoutMs: 30_000 });
      }),
    );
    const leaders = await waitFor(() => cluster.agreedLeaders(), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: `every group of the ${options.size} servers to agree on a leader (seed ${options.seed})`,
    });
    expect(leaders.size).toBe(groups);
    const ids = cluster.servers.map((s) => s.nodeId).sort();
    for (const self of await cluster.view()) {
      for (const group of self.groups)
        expect([...group.voters].sort(), `${self.nodeId} group ${group.groupId}`).toEqual(ids);
    }
  } finally {
    await cluster.destroy();
  }
}

describe('servers started with the same flags and a plain address list', () => {
  for (const size of [3, 5]) {
    it(`form exactly one cluster of ${size}, whatever the order and delays (${runsPerSize} runs)`, async () => {
      for (let run = 1; run <= runsPerSize; run++) await formOnce({ size, seed: size * 1000 + run });
    }, 300_000);
  }
});
