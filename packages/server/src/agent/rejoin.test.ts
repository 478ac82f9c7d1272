import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { JoinReply } from './membership-protocol.js';
import { RejoinWatcher } from './rejoin.js';

const self = { nodeId: 's3', raft: { host: '127.0.0.1', port: 1 }, http: { host: '127.0.0.1', port: 2 } };

/** One group whose own log names `voters` and knows `leaderId`; join requests are recorded. */
function watcher(options: { voters: string[]; leaderId: string | null; removedBy: string | null }) {
  const asked: { to: string; groupIds: readonly number[] }[] = [];
  const host = {
    groupCount: 1,
    group: () => ({
      raw: {
        status: () => ({ leaderId: options.leaderId, confState: { voters: options.voters, learners: [] } }),
      },
    }),
  };
  const rejoin = new RejoinWatcher({
    self: () => self,
    host: host as never,
    requestJoin: async (request): Promise<JoinReply> => {
      asked.push({ to: request.to, groupIds: request.groupIds });
      return {
        type: 'joinReply',
        requestId: 0,
        groupCount: 1,
        results: [],
        members: [],
      } as unknown as JoinReply;
    },
    logger: pino({ level: 'silent' }),
    removedBy: () => options.removedBy,
    onGiveUp: () => undefined,
    limits: { leaderlessTicksMax: 5, requestIntervalTicks: 3 },
  });
  return { rejoin, asked };
}

describe('the rejoin watcher', () => {
  it('asks through a member once a group it belongs to has had no leader for leaderlessTicksMax', async () => {
    const { rejoin, asked } = watcher({ voters: ['s1', 's2', 's3'], leaderId: null, removedBy: null });
    for (let tick = 0; tick < 4; tick++) rejoin.tick();
    expect(asked).toEqual([]);
    rejoin.tick();
    await Promise.resolve();
    expect(asked).toEqual([{ to: 's1', groupIds: [0] }]);
  });

  it('never asks while a leader talks to it', () => {
    const { rejoin, asked } = watcher({ voters: ['s1', 's2', 's3'], leaderId: 's1', removedBy: null });
    for (let tick = 0; tick < 50; tick++) rejoin.tick();
    expect(asked).toEqual([]);
  });

  it('asks at once when it applied its own removal by dead-server cleanup, never after an operator removed it', async () => {
    const byAutopilot = watcher({
      voters: ['s1', 's2'],
      leaderId: 's1',
      removedBy: 'autopilot dead server cleanup: not heard from for 3000 ms (threshold 2000 ms)',
    });
    byAutopilot.rejoin.tick();
    await Promise.resolve();
    expect(byAutopilot.asked).toEqual([{ to: 's1', groupIds: [0] }]);
    const byOperator = watcher({ voters: ['s1', 's2'], leaderId: 's1', removedBy: 'operator remove-peer' });
    for (let tick = 0; tick < 50; tick++) byOperator.rejoin.tick();
    expect(byOperator.asked).toEqual([]);
  });
});
