import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import type { Address, JoinTarget } from './config.js';
import { type Answer, discoverCluster } from './discovery.js';

const logger = pino({ level: 'silent' });
const target = (port: number, nodeId: string | null = null): JoinTarget => ({
  nodeId,
  raft: { host: '127.0.0.1', port },
});

/**
 * A scripted world: `answers[port]` is who listens there, from round `upFrom` on (earlier
 * rounds find nothing). Time advances only by the delays discovery asks for.
 */
function world(answers: Record<number, Answer & { upFrom?: number }>) {
  let round = 0;
  let clockMs = 0;
  const asked: number[][] = [];
  return {
    asked,
    rounds: () => round,
    options: {
      identify: async (address: Address): Promise<Answer> => {
        const thisRound = asked[round] ?? [];
        asked[round] = thisRound;
        thisRound.push(address.port);
        const answer = answers[address.port];
        if (answer === undefined || round < (answer.upFrom ?? 0)) throw new Error('ECONNREFUSED');
        return { nodeId: answer.nodeId, self: answer.self };
      },
      now: () => clockMs,
      delay: async (ms: number) => {
        clockMs += ms;
        round += 1;
      },
      random: () => 0.5,
      logger,
    },
  };
}

describe('forming a cluster from a plain address list', () => {
  it('bootstraps with every server once all of them answered, itself recognised in the list', async () => {
    const w = world({
      1: { nodeId: 'a', self: true },
      2: { nodeId: 'b', self: false, upFrom: 3 },
      3: { nodeId: 'c', self: false },
    });
    const outcome = await discoverCluster({
      ...w.options,
      selfId: 'a',
      bootstrapExpect: 3,
      targets: [target(1), target(2), target(3)],
    });
    expect(outcome).toEqual({ kind: 'bootstrap', voters: ['a', 'b', 'c'] });
    // It waited for b rather than deciding on a and c; answered targets were not asked again.
    expect(w.rounds()).toBe(3);
    expect(w.asked[1]).toEqual([2]);
  });

  it('joins instead when the list reaches more servers than --bootstrap-expect', async () => {
    const w = world({
      1: { nodeId: 'a', self: false },
      2: { nodeId: 'b', self: false },
      3: { nodeId: 'c', self: false },
    });
    const outcome = await discoverCluster({
      ...w.options,
      selfId: 'd',
      bootstrapExpect: 3,
      targets: [target(1), target(2), target(3)],
    });
    expect(outcome).toEqual({ kind: 'join', known: ['a', 'b', 'c', 'd'] });
  });

  it('counts a server listed twice (by two names) once, and named targets without asking', async () => {
    const w = world({
      1: { nodeId: 'a', self: true },
      2: { nodeId: 'b', self: false },
      3: { nodeId: 'b', self: false },
    });
    const outcome = await discoverCluster({
      ...w.options,
      selfId: 'a',
      bootstrapExpect: 3,
      targets: [target(1), target(2), target(3), target(9, 'c')],
    });
    expect(outcome).toEqual({ kind: 'bootstrap', voters: ['a', 'b', 'c'] });
    expect(w.asked[0]).not.toContain(9);
  });

  it('refuses a list that can never make --bootstrap-expect servers', async () => {
    const w = world({ 1: { nodeId: 'a', self: true }, 2: { nodeId: 'b', self: false } });
    const failure = await discoverCluster({
      ...w.options,
      selfId: 'a',
      bootstrapExpect: 3,
      targets: [target(1), target(2)],
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConclaveError);
    expect(failure).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/reaches only 2/),
    });
  });

  it('gives up after timeoutMs with JOIN_FAILED naming the silent servers', async () => {
    const w = world({ 1: { nodeId: 'a', self: true } });
    const failure = await discoverCluster({
      ...w.options,
      selfId: 'a',
      bootstrapExpect: 2,
      targets: [target(1), target(2)],
      limits: { timeoutMs: 10_000 },
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({
      code: 'JOIN_FAILED',
      message: expect.stringMatching(/1 of 2 --join servers never answered .*127\.0\.0\.1:2: ECONNREFUSED/),
    });
  });
});
