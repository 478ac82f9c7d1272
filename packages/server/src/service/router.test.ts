import { RaftError, RaftErrorCode } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupCall, GroupReply } from './calls.js';
import type { ForwardClient } from './forward-client.js';
import type { LocalGroups } from './local.js';
import { GroupRouter } from './router.js';

const tickMs = 2;
const write: GroupCall = { kind: 'apply', command: new Uint8Array([1]) } as unknown as GroupCall;
const applied = { kind: 'apply', index: 7 } as unknown as GroupReply;

/** A router on a server that leads group 0, whose local calls are refused `refusals` times. */
function routerRefusing(options: { refusals: number; leaderWaitMs?: number }) {
  let calls = 0;
  const host = {
    nodeId: 's1',
    group: () => ({ raw: { status: () => ({ leaderId: 's1' }) } }),
  } as unknown as MultiRaftHost<FsmResult>;
  const local = {
    call: async () => {
      calls++;
      if (calls <= options.refusals) {
        throw new RaftError({
          code: RaftErrorCode.TransferInProgress,
          message: 'leadership is being transferred to s2; retry shortly',
          leaderId: 's1',
        });
      }
      return applied;
    },
  } as unknown as LocalGroups;
  const router = new GroupRouter({
    host,
    local,
    peers: { httpAddress: () => null, raftAddress: () => null },
    client: {} as ForwardClient,
    tickMs,
    ...(options.leaderWaitMs === undefined
      ? {}
      : { limits: { leaderWaitMs: options.leaderWaitMs, attemptsMax: 64 } }),
  });
  return { router, calls: () => calls };
}

describe('routing through a leadership handover', () => {
  it('keeps retrying a refused write for as long as a handover may take (more than a few ticks)', async () => {
    // Twelve ticks of refusals: longer than an election timeout of 10 ticks.
    const { router, calls } = routerRefusing({ refusals: 12 });
    await expect(router.call({ groupId: 0, call: write })).resolves.toBe(applied);
    expect(calls()).toBe(13);
  });

  it('gives up with NO_LEADER once leaderWaitMs has passed, naming how often the leader moved', async () => {
    const { router, calls } = routerRefusing({ refusals: 1_000, leaderWaitMs: 30 });
    const failure = await router.call({ groupId: 0, call: write }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConclaveError);
    expect(failure).toMatchObject({
      code: 'NO_LEADER',
      message: expect.stringMatching(/the leader moved \d+ times/),
    });
    expect(calls()).toBeLessThanOrEqual(64);
  });
});
