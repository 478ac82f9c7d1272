/**
 * Server stabilization through the learner promoter: a learner is promoted once healthy
 * (caught up within MaxTrailingLogs and active) for ServerStabilizationTime, read from
 * autopilot's settings every tick, and not a tick before.
 */
import type { ConfChange, ProposeResult, RaftStatus } from '@conclave/raft';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LearnerPromoter } from '../agent/promotion.js';
import { type AutopilotSettings, defaultAutopilotSettings } from './config.js';

const tickMs = 50;

/** One group led by s1, with learner s4 whose progress the test sets. */
function fakeHost() {
  const learner = { match: 100, recentActive: true };
  const proposals: ConfChange[] = [];
  const status = (): RaftStatus =>
    ({
      id: 's1',
      term: 2,
      vote: 's1',
      commit: 100,
      applied: 100,
      lastIndex: 100,
      role: 'leader',
      leaderId: 's1',
      confState: { voters: ['s1', 's2', 's3'], learners: ['s4'] },
      leadTransferee: null,
      electionElapsedTicks: 0,
      progress: new Map([
        [
          's4',
          {
            match: learner.match,
            next: learner.match + 1,
            state: 'replicate',
            isLearner: true,
            recentActive: learner.recentActive,
            sinceHeardTicks: learner.recentActive ? 0 : null,
          },
        ],
      ]),
    }) as RaftStatus;
  const host = {
    groupCount: 1,
    group: () => ({ raw: { status } }),
    proposeConfChange: (options: { groupId: number; change: ConfChange }): ProposeResult => {
      proposals.push(options.change);
      return { ok: true, index: 101, term: 2 } as ProposeResult;
    },
  };
  return { host, learner, proposals };
}

/** The promoter as the agent wires it: autopilot's policy over the default limits. */
function promoterWith(settings: () => AutopilotSettings, host: ReturnType<typeof fakeHost>['host']) {
  return new LearnerPromoter({
    host,
    logger: pino({ level: 'silent' }),
    policy: () => ({
      learnerStableTicks: Math.ceil(settings().serverStabilizationTimeMs / tickMs),
      learnerLagEntriesMax: settings().maxTrailingLogs,
    }),
  });
}

function ticksUntilPromoted(promoter: LearnerPromoter, proposals: ConfChange[], ticksMax: number): number {
  for (let tick = 1; tick <= ticksMax; tick++) {
    promoter.tick();
    if (proposals.length > 0) return tick;
  }
  throw new Error(`not promoted within ${ticksMax} ticks`);
}

describe('server stabilization', () => {
  it('promotes after exactly ServerStabilizationTime of health, following a change of the setting', () => {
    let settings: AutopilotSettings = { ...defaultAutopilotSettings, serverStabilizationTimeMs: 2_000 };
    const { host, proposals } = fakeHost();
    const promoter = promoterWith(() => settings, host);
    for (let i = 0; i < 30; i++) promoter.tick();
    // Raised mid-way: the learner now needs 3 s (60 ticks) in all.
    settings = { ...settings, serverStabilizationTimeMs: 3_000 };
    expect(30 + ticksUntilPromoted(promoter, proposals, 100)).toBe(60);
    expect(proposals).toEqual([{ type: expect.anything(), nodeId: 's4' }]);
  });

  it('waits while the learner trails by more than MaxTrailingLogs, and counts again from zero', () => {
    const settings: AutopilotSettings = {
      ...defaultAutopilotSettings,
      serverStabilizationTimeMs: 1_000,
      maxTrailingLogs: 10,
    };
    const { host, learner, proposals } = fakeHost();
    const promoter = promoterWith(() => settings, host);
    learner.match = 89;
    for (let i = 0; i < 100; i++) promoter.tick();
    expect(proposals).toEqual([]);
    learner.match = 90;
    expect(ticksUntilPromoted(promoter, proposals, 100)).toBe(20);
  });

  it('keeps explicit tuning over the policy (tests and operators may shorten it)', () => {
    const { host, proposals } = fakeHost();
    const promoter = new LearnerPromoter({
      host,
      logger: pino({ level: 'silent' }),
      limits: { learnerStableTicks: 5 },
      policy: () => ({ learnerStableTicks: 200 }),
    });
    expect(ticksUntilPromoted(promoter, proposals, 300)).toBe(5);
  });
});
