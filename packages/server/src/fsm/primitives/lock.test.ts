import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../commands.js';
import { FsmDriver } from '../testing/driver.js';
import { commandProblem } from './engine.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

const row = primitiveRowKey({ kind: 'lock', name: 'L' });

/** A driver with sessions s1..sN. */
function withSessions(count: number): FsmDriver {
  const d = new FsmDriver();
  for (let i = 1; i <= count; i++) d.createSession(`s${i}`);
  return d;
}

function holder(d: FsmDriver, name = 'L') {
  return d.read('lock', name, 'holder').value;
}

const holds = (d: FsmDriver) =>
  ['s1', 's2', 's3', 's4'].filter((session) => d.fsm.getKey(holdRowKey({ session, rowKey: row })) !== null);

describe('lock', () => {
  it('is free before its first write', () => {
    const d = new FsmDriver();
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
  });

  it('tryAcquire takes a free lock, fenced at the Raft index; held, it fails without queueing or writing', () => {
    const d = withSessions(2);
    const taken = d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' });
    expect(taken).toMatchObject({ result: { fence: taken.index }, error: null });
    expect(holder(d)).toEqual({ session: 's1', fence: taken.index, waiters: [] });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('lock', 'L', 'tryAcquire', {}, { session: 's2' }).result).toEqual({
      fence: null,
      position: 0,
    });
    // The holder asking again keeps its fence.
    expect(d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' }).result).toEqual({ fence: taken.index });
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).result).toEqual({ fence: taken.index });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(holder(d)).toEqual({ session: 's1', fence: taken.index, waiters: [] });
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
    const first = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
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
      const released = d.prim('lock', 'L', 'release', { fence: now.fence });
      expect(released).toMatchObject({ result: { released: true }, error: null });
      const next = holder(d) as { fence: number | null };
      if (next.fence !== null) {
        expect(next.fence).toBe(released.index);
        fences.push(next.fence);
      }
    }
    expect(order).toEqual(['s1', 's3', 's2', 's4']);
    expect(fences).toHaveLength(4);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
    expect(holds(d)).toEqual([]);
    // Taken again later, its fence is greater than every earlier one.
    const again = d.prim('lock', 'L', 'tryAcquire', {}, { session: 's1' });
    expect(again.result).toEqual({ fence: again.index });
    expect(again.index).toBeGreaterThan(fences[3] as number);
  });

  it('release with a wrong fence, an old fence or another lock’s fence is LOCK_NOT_HELD and changes nothing', () => {
    const d = withSessions(3);
    const old = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
    d.prim('lock', 'L', 'release', { fence: old });
    const other = d.prim('lock', 'other', 'acquire', {}, { session: 's3' }).index;
    const fence = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    const before = d.fsm.getKey(row);
    const kvIndex = d.fsm.kvIndex();
    for (const wrong of [old, other, fence + 1, fence - 1]) {
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
    const fence = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
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
    const released = d.prim('lock', 'L', 'release', { fence });
    expect(holder(d)).toEqual({ session: 's3', fence: released.index, waiters: [] });
  });

  it('destroying the holder’s session hands the lock to the next waiter, fenced at the destroy', () => {
    const d = withSessions(3);
    const fence = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    d.destroySession('s1');
    const destroyed = d.next - 1;
    expect(holder(d)).toEqual({ session: 's2', fence: destroyed, waiters: ['s3'] });
    expect(destroyed).toBeGreaterThan(fence);
    expect(holds(d)).toEqual(['s2', 's3']);
    // The old holder's fence no longer releases it.
    expect(d.prim('lock', 'L', 'release', { fence }).error?.code).toBe('LOCK_NOT_HELD');
    d.destroySession('s2');
    expect(holder(d)).toEqual({ session: 's3', fence: d.next - 1, waiters: [] });
    d.destroySession('s3');
    expect(holder(d)).toEqual({ session: null, fence: null, waiters: [] });
    expect(holds(d)).toEqual([]);
  });

  it('destroying a waiter’s session takes it out of line and leaves the holder and fence alone', () => {
    const d = withSessions(3);
    const fence = d.prim('lock', 'L', 'acquire', {}, { session: 's1' }).index;
    d.prim('lock', 'L', 'acquire', {}, { session: 's2' });
    d.prim('lock', 'L', 'acquire', {}, { session: 's3' });
    d.destroySession('s2');
    expect(holder(d)).toEqual({ session: 's1', fence, waiters: ['s3'] });
    expect(holds(d)).toEqual(['s1', 's3']);
    const released = d.prim('lock', 'L', 'release', { fence });
    expect(holder(d)).toEqual({ session: 's3', fence: released.index, waiters: [] });
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
