import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type GroupLeadership,
  isTransferTarget,
  type MemberProgress,
  planLeaderTransfer,
  type TransferTargetLimits,
} from './balancer.js';

const voters = ['s1', 's2', 's3'];
const limits: TransferTargetLimits = { heardWithinTicks: 10, trailingEntriesMax: 256 };
const lastIndex = 1000;
const healthy: MemberProgress = { match: lastIndex, sinceHeardTicks: 0 };
const dead: MemberProgress = { match: 900, sinceHeardTicks: 40 };

/**
 * Groups led as `leaders` says (one id per group). The groups s1 leads carry s1's view of
 * its members: healthy unless `seen` says otherwise.
 */
function groupsLedBy(
  leaders: readonly (string | null)[],
  seen: Readonly<Record<string, MemberProgress>> = {},
): GroupLeadership[] {
  const progress = new Map(voters.map((id) => [id, seen[id] ?? healthy]));
  return leaders.map((leaderId, groupId) => ({
    groupId,
    leaderId,
    voters,
    leaderView: leaderId === 's1' ? { lastIndex, progress } : null,
  }));
}

describe('isTransferTarget', () => {
  const view = (member: MemberProgress) => ({ lastIndex, progress: new Map([['s2', member]]) });
  it('takes a voter heard from within the window and at most trailingEntriesMax behind', () => {
    expect(isTransferTarget({ id: 's2', view: view(healthy), limits })).toBe(true);
    expect(isTransferTarget({ id: 's2', view: view({ match: 744, sinceHeardTicks: 9 }), limits })).toBe(true);
  });
  it('refuses one silent for the window, one never heard from in this term, one lagging, one unknown', () => {
    expect(
      isTransferTarget({ id: 's2', view: view({ match: lastIndex, sinceHeardTicks: 10 }), limits }),
    ).toBe(false);
    expect(isTransferTarget({ id: 's2', view: view({ match: 0, sinceHeardTicks: null }), limits })).toBe(
      false,
    );
    expect(isTransferTarget({ id: 's2', view: view({ match: 743, sinceHeardTicks: 0 }), limits })).toBe(
      false,
    );
    expect(isTransferTarget({ id: 's3', view: view(healthy), limits })).toBe(false);
  });
});

describe('planLeaderTransfer', () => {
  it('hands a group from a server above its fair share to the voter leading the fewest', () => {
    // 8 groups over 3 voters: a fair share is 3. s1 leads 5, s2 3, s3 none.
    const groups = groupsLedBy(['s1', 's1', 's2', 's1', 's2', 's1', 's2', 's1']);
    expect(planLeaderTransfer({ self: 's1', groups, limits })).toEqual({ groupId: 0, to: 's3' });
  });

  it('moves nothing within the fair share, nor what it does not lead', () => {
    const balanced = groupsLedBy(['s1', 's2', 's3', 's1', 's2', 's3', 's1', 's2']);
    expect(planLeaderTransfer({ self: 's1', groups: balanced, limits })).toBeNull();
    const others = groupsLedBy(['s2', 's2', 's2', 's2', 's2', 's3', 's3', 's3']);
    expect(planLeaderTransfer({ self: 's1', groups: others, limits })).toBeNull();
  });

  it('never hands a group to a voter its leader has not heard from recently (a dead server)', () => {
    // s3 leads nothing, so it would be the first choice; it is down.
    const groups = groupsLedBy(['s1', 's1', 's1', 's1', 's1', 's1', 's2', 's2'], { s3: dead });
    expect(planLeaderTransfer({ self: 's1', groups, limits })).toEqual({ groupId: 0, to: 's2' });
  });

  it('moves nothing when the only live voter would not lead fewer after the move', () => {
    // s3 is down: 4 and 4 is as even as two servers get, though above the share of three.
    const groups = groupsLedBy(['s1', 's1', 's1', 's1', 's2', 's2', 's2', 's2'], { s3: dead });
    expect(planLeaderTransfer({ self: 's1', groups, limits })).toBeNull();
  });

  it('skips a voter never heard from in this term and one too far behind', () => {
    const leaders = ['s1', 's1', 's1', 's1', 's1', 's1', 's2', 's2'];
    const silent = { match: 0, sinceHeardTicks: null };
    expect(planLeaderTransfer({ self: 's1', groups: groupsLedBy(leaders, { s3: silent }), limits })).toEqual({
      groupId: 0,
      to: 's2',
    });
    const lagging = { match: lastIndex - 257, sinceHeardTicks: 0 };
    expect(planLeaderTransfer({ self: 's1', groups: groupsLedBy(leaders, { s3: lagging }), limits })).toEqual(
      {
        groupId: 0,
        to: 's2',
      },
    );
    expect(
      planLeaderTransfer({ self: 's1', groups: groupsLedBy(leaders, { s2: dead, s3: silent }), limits }),
    ).toBeNull();
  });

  it('judges each group by its own leader view: a voter behind in one group may take another', () => {
    // s2 is down; s3 is far behind in group 0 only, so group 1 is the one it takes.
    const groups = groupsLedBy(['s1', 's1', 's1', 's1', 's1', 's2', 's2', 's2'], { s2: dead }).map((g) =>
      g.groupId === 0 && g.leaderView !== null
        ? {
            ...g,
            leaderView: {
              lastIndex,
              progress: new Map([...g.leaderView.progress, ['s3', { match: 10, sinceHeardTicks: 0 }]]),
            },
          }
        : g,
    );
    expect(planLeaderTransfer({ self: 's1', groups, limits })).toEqual({ groupId: 1, to: 's3' });
  });

  it('only ever names a voter that its group leader heard from recently and that is caught up', () => {
    const member = fc.record({
      match: fc.integer({ min: 0, max: lastIndex }),
      sinceHeardTicks: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }),
    });
    const group = fc.record({
      leaderId: fc.constantFrom<string | null>('s1', 's2', 's3', null),
      progress: fc.record({ s1: member, s2: member, s3: member }),
    });
    fc.assert(
      fc.property(fc.array(group, { minLength: 1, maxLength: 16 }), (specs) => {
        const groups: GroupLeadership[] = specs.map((spec, groupId) => ({
          groupId,
          leaderId: spec.leaderId,
          voters,
          leaderView:
            spec.leaderId === 's1' ? { lastIndex, progress: new Map(Object.entries(spec.progress)) } : null,
        }));
        const move = planLeaderTransfer({ self: 's1', groups, limits });
        if (move === null) return;
        const spec = specs[move.groupId];
        expect(spec?.leaderId).toBe('s1');
        expect(move.to).not.toBe('s1');
        // Checked against the limits directly, not through isTransferTarget.
        const target = new Map(Object.entries(spec?.progress ?? {})).get(move.to);
        expect(target?.sinceHeardTicks).not.toBeNull();
        expect(target?.sinceHeardTicks ?? Number.POSITIVE_INFINITY).toBeLessThan(limits.heardWithinTicks);
        expect(lastIndex - (target?.match ?? 0)).toBeLessThanOrEqual(limits.trailingEntriesMax);
      }),
    );
  });
});
