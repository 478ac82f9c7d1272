import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../commands.js';
import { FsmDriver } from '../testing/driver.js';
import { fenceCount, fenceParts, nextFence, nextFences } from '../testing/primitives.js';
import { commandProblem } from './engine.js';
import { fenceGroupStride } from './fences.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

const row = primitiveRowKey({ kind: 'lock', name: 'L' });

/** A driver with sessions s1..sN. */
function withSessions(count: number): FsmDriver {
  const d = new FsmDriver();
  for (let i = 1; i <= count; i++) d.createSession(`s${i}`);
  return d;
}

function holder(d: FsmDriver, name = 'L') {
  return d.read('lock', name, 'holder').value as {
    session: string | null;
    fence: number | null;
    waiters: string[];
  };
}

const holds = (d: FsmDriver) =>
  ['s1', 's2', 's3', 's4'].filter((session) => d.fsm.getKey(holdRowKey({ session, rowKey: row })) !== null);

describe('lock', () => {
  it('is free before its first write', () => {
    const d = new FsmDriver();
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
  });

  it('tryAcquire takes a free lock with a new fence; held, it fails without queueing or writing', () => {
    const d = withSessions(2);
    const fence = nextFence(d);
    const taken = d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' });
    expect(taken).toMatchObject({ result: { fence }, error: null });
    // Counted never below the entry's index, in this group (0), and stored as the last count.
    expect(fenceParts(fence).count).toBeGreaterThanOrEqual(taken.index);
    expect(fenceParts(fence).group).toBe(0);
    expect(fenceCount(d.fsm)).toBe(fenceParts(fence).count);
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: [] });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'L', 'tryAcquire', {}, { session: 's2' }).result).toEqual({
      fence: null,
      position: 0,
    });
    // The holder asking again keeps its fence.
    expect(d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' }).result).toEqual({ fence });
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).result).toEqual({ fence });
    // None of these took a fence: the count row is unwritten too.
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(fenceCount(d.fsm)).toBe(fenceParts(fence).count);
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: [] });
    expect(holds(d)).toEqual(['s1']);
  });

  it('acquire queues behind the holder first come first served; asking again keeps the place', () => {
    const d = withSessions(4);
    d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's3' }).result).toEqual({
      fence: null,
      position: 1,
    });
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's2' }).result).toEqual({
      fence: null,
      position: 2,
    });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's3' }).result).toEqual({
      fence: null,
      position: 1,
    });
    expect(d.prim('lock', 'L', 'tryAcquire', {}, { session: 's2' }).result).toEqual({
      fence: null,
      position: 2,
    });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(holder(d)).toMatchObject({ session: 's1', waiters: ['s3', 's2'] });
    expect(holds(d)).toEqual(['s1', 's2', 's3']);
  });

  it('release hands the lock to the waiters in order, the fence growing at every change of hands', () => {
    const d = withSessions(4);
    const first = nextFence(d);
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).result).toEqual({ fence: first });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's4' });
    const order: string[] = [];
    const fences: number[] = [first];
    for (;;) {
      const now = holder(d) as { session: string | null; fence: number | null };
      if (now.session === null) break;
      order.push(now.session);
      d.skip(2);
      const fresh = nextFence(d);
      const released = d.prim('lock', 'L', 'release', { fence: now.fence });
      expect(released).toMatchObject({ result: { released: true }, error: null });
      const next = holder(d) as { fence: number | null };
      if (next.fence !== null) {
        expect(next.fence).toBe(fresh);
        expect(fenceParts(next.fence).count).toBeGreaterThanOrEqual(released.index);
        fences.push(next.fence);
      }
    }
    expect(order).toEqual(['s1', 's3', 's2', 's4']);
    expect(fences).toHaveLength(4);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
    expect(holds(d)).toEqual([]);
    // Taken again later, its fence is greater than every earlier one.
    const fresh = nextFence(d);
    const again = d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' });
    expect(again.result).toEqual({ fence: fresh });
    expect(fresh).toBeGreaterThan(fences[3] as number);
  });

  it('release with a wrong fence, an old fence or another lock’s fence is LOCK_NOT_HELD and changes nothing', () => {
    const d = withSessions(3);
    const fenceOf = (result: { result: unknown }) => (result.result as { fence: number }).fence;
    const old = fenceOf(d.prim('lock', 'L', 'acquire', {}, { session: 's1' }));
    d.prim('lock', 'L', 'release', { fence: old });
    const other = fenceOf(d.prim('lock', 'other', 'acquire', {}, { session: 's3' }));
    const fence = fenceOf(d.prim('lock', 'L', 'acquire', {}, { session: 's1' }));
    expect(new Set([old, other, fence]).size).toBe(3);
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    const before = d.fsm.getKey(row);
    const kvIndex = d.fsm.kvIndex();
    // The same count in another group (±1), and the next count of this group.
    const wrongs = [old, other, fence + 1, fence - 1, fence + fenceGroupStride];
    for (const wrong of wrongs) {
      const refused = d.prim('lock', 'L', 'release', { fence: wrong });
      expect(refused).toMatchObject({
        result: null,
        error: { code: 'LOCK_NOT_HELD', message: expect.stringContaining(`holder has fence ${fence}`) },
      });
    }
    expect(d.fsm.getKey(row)).toBe(before);
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: ['s2'] });
    expect(holder(d, 'other')).toMatchObject({ session: 's3', fence: other });
    // A free lock holds no fence at all.
    expect(d.prim('lock', 'free', 'release', { fence }).error?.code).toBe('LOCK_NOT_HELD');
  });

  it('cancel takes a waiter out of line; the holder learns its fence; anyone else changes nothing', () => {
    const d = withSessions(4);
    const fence = nextFence(d);
    d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    expect(d.prim('lock', 'L', 'cancel', {}, { session: 's2' }).result).toEqual({ fence: null });
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: ['s3'] });
    expect(holds(d)).toEqual(['s1', 's3']);
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'L', 'cancel', {}, { session: 's4' }).result).toEqual({ fence: null });
    expect(d.prim('lock', 'L', 'cancel', {}, { session: 's1' }).result).toEqual({ fence });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    // After a cancel, the released lock goes to the one still waiting.
    const fresh = nextFence(d);
    expect(fresh).toBeGreaterThan(fence);
    d.prim('lock', 'L', 'release', { fence });
    expect(holder(d)).toEqual({ session: 's3', fence: fresh, waiters: [] });
  });

  it('destroying the holder’s session hands the lock to the next waiter, with a new fence', () => {
    const d = withSessions(3);
    const fence = nextFence(d);
    d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    const handed = nextFence(d);
    d.destroySession('s1');
    expect(holder(d)).toEqual({ session: 's2', fence: handed, waiters: ['s3'] });
    expect(handed).toBeGreaterThan(fence);
    expect(fenceParts(handed).count).toBeGreaterThanOrEqual(d.next - 1);
    expect(holds(d)).toEqual(['s2', 's3']);
    // The old holder's fence no longer releases it.
    expect(d.prim('lock', 'L', 'release', { fence }).error?.code).toBe('LOCK_NOT_HELD');
    const last = nextFence(d);
    d.destroySession('s2');
    expect(holder(d)).toEqual({ session: 's3', fence: last, waiters: [] });
    expect(last).toBeGreaterThan(handed);
    d.destroySession('s3');
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
    expect(holds(d)).toEqual([]);
  });

  it('destroying a waiter’s session takes it out of line and leaves the holder and fence alone', () => {
    const d = withSessions(3);
    const fence = nextFence(d);
    d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    const count = fenceCount(d.fsm);
    d.destroySession('s2');
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: ['s3'] });
    expect(holds(d)).toEqual(['s1', 's3']);
    // No fence was taken.
    expect(fenceCount(d.fsm)).toBe(count);
    const fresh = nextFence(d);
    d.prim('lock', 'L', 'release', { fence });
    expect(holder(d)).toEqual({ session: 's3', fence: fresh, waiters: [] });
  });

  it('one destroy handing two locks over gives each its own fence, and neither releases the other', () => {
    const d = withSessions(3);
    const a = primitiveRowKey({ kind: 'lock', name: 'A' });
    const b = primitiveRowKey({ kind: 'lock', name: 'B' });
    d.prim('lock', 'A', 'acquire', {}, { session: 's1' });
    const earlier = nextFence(d);
    d.prim('lock', 'B', 'acquire', {}, { session: 's1' });
    d.prim('lock', 'A', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'B', 'acquire', {}, { session: 's3' });
    const destroy = d.next;
    const handed = nextFences(d, 2);
    d.destroySession('s1');
    const fenceA = holder(d, 'A').fence as number;
    const fenceB = holder(d, 'B').fence as number;
    expect(holder(d, 'A')).toEqual({ session: 's2', fence: fenceA, waiters: [] });
    expect(holder(d, 'B')).toEqual({ session: 's3', fence: fenceB, waiters: [] });
    // One entry, two fences: both new, past every earlier one, and not the same.
    expect(fenceA).not.toBe(fenceB);
    expect([fenceA, fenceB].sort((x, y) => x - y)).toEqual(handed);
    for (const fence of [fenceA, fenceB]) {
      expect(fence).toBeGreaterThan(earlier);
      expect(fenceParts(fence)).toMatchObject({ group: 0 });
      expect(fenceParts(fence).count).toBeGreaterThanOrEqual(destroy);
    }
    // The count ran past the index: the next entry's fence still grows, counted past both.
    const c = d.prim('lock', 'C', 'acquire', {}, { session: 's2' });
    expect(c.index).toBe(destroy + 1);
    expect(c.result).toEqual({ fence: (destroy + 2) * fenceGroupStride });
    expect(fenceParts(Math.max(...handed)).count).toBe(destroy + 1);
    // B's fence does not release A (nor A's B), and changes nothing.
    const before = [d.fsm.getKey(a), d.fsm.getKey(b)];
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'A', 'release', { fence: fenceB })).toMatchObject({
      result: null,
      error: { code: 'LOCK_NOT_HELD', message: expect.stringContaining(`holder has fence ${fenceA}`) },
    });
    expect(d.prim('lock', 'B', 'release', { fence: fenceA }).error?.code).toBe('LOCK_NOT_HELD');
    expect([d.fsm.getKey(a), d.fsm.getKey(b)]).toEqual(before);
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(holder(d, 'A')).toMatchObject({ session: 's2', fence: fenceA });
    // Each one's own fence does.
    expect(d.prim('lock', 'A', 'release', { fence: fenceA }).result).toEqual({ released: true });
    expect(d.prim('lock', 'B', 'release', { fence: fenceB }).result).toEqual({ released: true });
    expect(holder(d, 'A')).toEqual({ session: null, fence: null, waiters: [] });
    expect(holder(d, 'B')).toEqual({ session: null, fence: null, waiters: [] });
  });

  it('a fence carries its group: the same entries in two groups fence the lock apart', () => {
    const fencesIn = (groupId: number) => {
      const d = new FsmDriver({}, { groupId });
      d.createSession('s1');
      d.createSession('s2');
      const first = d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
      d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
      d.prim('lock', 'L', 'release', { fence: (first.result as { fence: number }).fence });
      return [(first.result as { fence: number }).fence, holder(d).fence as number];
    };
    const zero = fencesIn(0);
    const seven = fencesIn(7);
    expect(zero.map(fenceParts)).toEqual([
      { count: 3, group: 0 },
      { count: 5, group: 0 },
    ]);
    expect(seven.map(fenceParts)).toEqual([
      { count: 3, group: 7 },
      { count: 5, group: 7 },
    ]);
    // Group 0's fences release nothing in group 7: no fence is another group's.
    const d = new FsmDriver({}, { groupId: 7 });
    d.createSession('s1');
    const fence = nextFence(d);
    d.prim('lock', 'L', 'acquire', {}, { session: 's1' });
    expect(fenceParts(fence)).toEqual({ count: 2, group: 7 });
    expect(d.prim('lock', 'L', 'release', { fence: fence - 7 }).error?.code).toBe('LOCK_NOT_HELD');
    expect(d.prim('lock', 'L', 'release', { fence }).result).toEqual({ released: true });
  });

  it('acquiring with a destroyed session is SESSION_EXPIRED and changes nothing', () => {
    const d = withSessions(2);
    d.destroySession('s2');
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's2' })).toMatchObject({
      result: null,
      error: { code: 'SESSION_EXPIRED' },
    });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(d.fsm.getKey(row)).toBeNull();
  });

  it('refuses a session-less tryAcquire, acquire or cancel before it is proposed (commandProblem)', () => {
    for (const op of ['tryAcquire', 'acquire', 'cancel']) {
      const command = { kind: 'lock', name: 'L', op, args: {}, session: null } as const;
      expect(commandProblem(command)).toBe(`lock ${op} needs a session`);
      expect(() => encodeCommand({ type: 'prim', ...command, seq: null })).toThrow(RaftInvariantError);
      expect(commandProblem({ ...command, session: 's1' })).toBeNull();
    }
    // release is by fence: it needs no session, but a fence >= 1.
    expect(
      commandProblem({ kind: 'lock', name: 'L', op: 'release', args: { fence: 3 }, session: null }),
    ).toBeNull();
    expect(
      commandProblem({ kind: 'lock', name: 'L', op: 'release', args: { fence: 0 }, session: null }),
    ).toMatch(/args.fence/);
    expect(commandProblem({ kind: 'lock', name: 'L', op: 'release', args: {}, session: null })).toMatch(
      /args.fence is required/,
    );
  });
});
