import { describe, expect, it } from 'vitest';
import { FsmDriver } from '../testing/driver.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

const row = primitiveRowKey({ kind: 'semaphore', name: 'S' });

function withSessions(count: number, permits: number | null = null): FsmDriver {
  const d = new FsmDriver();
  for (let i = 1; i <= count; i++) d.createSession(`s${i}`);
  if (permits !== null) d.prim('semaphore', 'S', 'setPermits', { permits });
  return d;
}

const acquire = (d: FsmDriver, session: string, permits = 1) =>
  d.prim('semaphore', 'S', 'acquire', { permits }, { session });
const tryAcquire = (d: FsmDriver, session: string, permits = 1) =>
  d.prim('semaphore', 'S', 'tryAcquire', { permits }, { session });
const release = (d: FsmDriver, session: string, permits = 1) =>
  d.prim('semaphore', 'S', 'release', { permits }, { session });
const state = (d: FsmDriver, session?: string) =>
  d.read('semaphore', 'S', 'availablePermits', session === undefined ? {} : { session }).value;
const holds = (d: FsmDriver) =>
  ['s1', 's2', 's3', 's4'].filter((session) => d.fsm.getKey(holdRowKey({ session, rowKey: row })) !== null);

describe('semaphore', () => {
  it('has no permits before setPermits, and setPermits sets how many there are', () => {
    const d = withSessions(1);
    expect(state(d)).toEqual({ available: 0, permits: 0, waiters: 0, held: 0, position: 0 });
    expect(d.prim('semaphore', 'S', 'setPermits', { permits: 3 }).result).toEqual({ held: 0, available: 3 });
    expect(state(d)).toEqual({ available: 3, permits: 3, waiters: 0, held: 0, position: 0 });
  });

  it('asking for more permits than there are in all is PERMITS_INVALID, and changes nothing', () => {
    const d = withSessions(1);
    expect(tryAcquire(d, 's1')).toMatchObject({
      result: null,
      error: { code: 'PERMITS_INVALID', message: expect.stringContaining('set its permits first') },
    });
    d.prim('semaphore', 'S', 'setPermits', { permits: 2 });
    const kvIndex = d.fsm.kvIndex();
    expect(tryAcquire(d, 's1', 3).error?.code).toBe('PERMITS_INVALID');
    expect(acquire(d, 's1', 3).error?.code).toBe('PERMITS_INVALID');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(state(d, 's1')).toEqual({ available: 2, permits: 2, waiters: 0, held: 0, position: 0 });
  });

  it('tryAcquire takes permits that are free, and fails without queueing or writing when they are not', () => {
    const d = withSessions(2, 3);
    expect(tryAcquire(d, 's1', 2).result).toEqual({ acquired: true, held: 2, available: 1 });
    const kvIndex = d.fsm.kvIndex();
    expect(tryAcquire(d, 's2', 2).result).toEqual({ acquired: false, held: 0 });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(tryAcquire(d, 's1').result).toEqual({ acquired: true, held: 3, available: 0 });
    expect(state(d, 's1')).toEqual({ available: 0, permits: 3, waiters: 0, held: 3, position: 0 });
    expect(holds(d)).toEqual(['s1']);
  });

  it('acquire queues first come first served: a small request does not pass a large one ahead of it', () => {
    const d = withSessions(4, 3);
    expect(acquire(d, 's1', 2).result).toMatchObject({ acquired: true, held: 2 });
    expect(acquire(d, 's2', 2).result).toMatchObject({ acquired: false, position: 1 });
    // One permit is free, but s2 is first in line.
    expect(acquire(d, 's3', 1).result).toMatchObject({ acquired: false, position: 2 });
    expect(tryAcquire(d, 's4', 1).result).toEqual({ acquired: false, held: 0 });
    expect(state(d, 's3')).toEqual({ available: 1, permits: 3, waiters: 2, held: 0, position: 2 });
    // Asking again keeps the place.
    expect(acquire(d, 's3', 1).result).toEqual({ acquired: false, held: 0, position: 2 });
    expect(holds(d)).toEqual(['s1', 's2', 's3']);
  });

  it('release serves the waiters in order while the first in line fits', () => {
    const d = withSessions(4, 3);
    acquire(d, 's1', 3);
    acquire(d, 's2', 2);
    acquire(d, 's3', 1);
    acquire(d, 's4', 2);
    expect(release(d, 's1', 1).result).toEqual({ held: 2, available: 1 });
    expect(state(d, 's2')).toMatchObject({ held: 0, position: 1, waiters: 3 });
    // Two free: s2 takes both; s3 must wait for the next.
    expect(release(d, 's1', 1).result).toEqual({ held: 1, available: 0 });
    expect(state(d, 's2')).toMatchObject({ held: 2, position: 0, waiters: 2 });
    expect(release(d, 's1', 1).result).toEqual({ held: 0, available: 0 });
    expect(state(d, 's3')).toMatchObject({ held: 1, position: 0, waiters: 1 });
    expect(holds(d)).toEqual(['s2', 's3', 's4']);
    release(d, 's2', 2);
    expect(state(d, 's4')).toEqual({ available: 0, permits: 3, waiters: 0, held: 2, position: 0 });
  });

  it('release of more than the session holds is PERMITS_INVALID and changes nothing', () => {
    const d = withSessions(2, 3);
    acquire(d, 's1', 2);
    const kvIndex = d.fsm.kvIndex();
    expect(release(d, 's1', 3)).toMatchObject({ result: null, error: { code: 'PERMITS_INVALID' } });
    expect(release(d, 's2', 1).error?.code).toBe('PERMITS_INVALID');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(state(d, 's1')).toMatchObject({ held: 2, available: 1 });
  });

  it('drain takes every free permit for the session', () => {
    const d = withSessions(2, 5);
    acquire(d, 's1', 2);
    expect(d.prim('semaphore', 'S', 'drain', {}, { session: 's2' }).result).toEqual({
      drained: 3,
      held: 3,
      available: 0,
    });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('semaphore', 'S', 'drain', {}, { session: 's2' }).result).toEqual({ drained: 0, held: 3 });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('the permits of a destroyed session come back and serve the waiters', () => {
    const d = withSessions(3, 2);
    acquire(d, 's1', 2);
    acquire(d, 's2', 1);
    acquire(d, 's3', 1);
    d.destroySession('s1');
    expect(state(d, 's2')).toEqual({ available: 0, permits: 2, waiters: 0, held: 1, position: 0 });
    expect(state(d, 's3')).toMatchObject({ held: 1 });
    expect(holds(d)).toEqual(['s2', 's3']);
    d.destroySession('s2');
    d.destroySession('s3');
    expect(state(d)).toEqual({ available: 2, permits: 2, waiters: 0, held: 0, position: 0 });
    expect(holds(d)).toEqual([]);
  });

  it('a destroyed waiter leaves the line, and the next in line is served if it fits', () => {
    const d = withSessions(3, 3);
    acquire(d, 's1', 1);
    acquire(d, 's2', 3);
    acquire(d, 's3', 2);
    d.destroySession('s2');
    expect(state(d, 's3')).toEqual({ available: 0, permits: 3, waiters: 0, held: 2, position: 0 });
  });

  it('cancel takes a waiter out of line, and the next in line is served if it fits', () => {
    const d = withSessions(3, 3);
    acquire(d, 's1', 1);
    acquire(d, 's2', 3);
    acquire(d, 's3', 2);
    expect(d.prim('semaphore', 'S', 'cancel', {}, { session: 's2' }).result).toEqual({
      held: 0,
      available: 0,
    });
    expect(state(d, 's3')).toEqual({ available: 0, permits: 3, waiters: 0, held: 2, position: 0 });
    expect(state(d, 's2')).toMatchObject({ held: 0, position: 0 });
    expect(holds(d)).toEqual(['s1', 's3']);
    // Cancelling when not waiting changes nothing.
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('semaphore', 'S', 'cancel', {}, { session: 's1' }).result).toEqual({ held: 1 });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('setPermits raised serves waiters; cut below what is held, none are free until enough come back', () => {
    const d = withSessions(3, 2);
    acquire(d, 's1', 2);
    acquire(d, 's2', 2);
    d.prim('semaphore', 'S', 'setPermits', { permits: 4 });
    expect(state(d, 's2')).toEqual({ available: 0, permits: 4, waiters: 0, held: 2, position: 0 });
    d.prim('semaphore', 'S', 'setPermits', { permits: 1 });
    expect(state(d, 's1')).toEqual({ available: 0, permits: 1, waiters: 0, held: 2, position: 0 });
    expect(tryAcquire(d, 's3').result).toEqual({ acquired: false, held: 0 });
    release(d, 's1', 2);
    expect(state(d)).toMatchObject({ available: 0 });
    release(d, 's2', 1);
    expect(state(d)).toMatchObject({ available: 0 });
    release(d, 's2', 1);
    expect(state(d)).toMatchObject({ available: 1 });
    expect(tryAcquire(d, 's3').result).toMatchObject({ acquired: true, held: 1 });
  });
});
