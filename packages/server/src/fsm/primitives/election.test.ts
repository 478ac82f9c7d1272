import type { ElectionTerm } from '@conclave/protocol';
import { describe, expect, it } from 'vitest';
import { FsmDriver } from '../testing/driver.js';
import { fenceCount, fenceParts, nextFence, nextFences } from '../testing/primitives.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

const row = primitiveRowKey({ kind: 'election', name: 'E' });

function withSessions(count: number): FsmDriver {
  const d = new FsmDriver();
  for (let i = 1; i <= count; i++) d.createSession(`s${i}`);
  return d;
}

const term = (d: FsmDriver) => d.read('election', 'E', 'term').value as ElectionTerm;
const enter = (d: FsmDriver, candidate: string, session: string) =>
  d.prim('election', 'E', 'enter', { candidate }, { session });

describe('election', () => {
  it('has no leader at term 0 before its first write', () => {
    expect(term(new FsmDriver())).toEqual({ term: 0, leader: null, candidates: [] });
  });

  it('the first to enter leads at a new term, a fence of the group; later ones stand in line', () => {
    const d = withSessions(2);
    const fresh = nextFence(d);
    const first = enter(d, 'a', 's1');
    expect(first).toMatchObject({
      result: { term: fresh, leader: 'a', candidates: ['a'] },
      error: null,
    });
    expect(fenceParts(fresh).count).toBeGreaterThanOrEqual(first.index);
    expect(fenceParts(fresh).group).toBe(0);
    const count = fenceCount(d.fsm);
    const second = enter(d, 'b', 's2');
    expect(second.result).toEqual({ term: fresh, leader: 'a', candidates: ['a', 'b'] });
    expect(term(d)).toEqual({ term: fresh, leader: 'a', candidates: ['a', 'b'] });
    // Standing in line takes no fence.
    expect(fenceCount(d.fsm)).toBe(count);
    expect(d.fsm.getKey(holdRowKey({ session: 's1', rowKey: row }))).not.toBeNull();
    expect(d.fsm.getKey(holdRowKey({ session: 's2', rowKey: row }))).not.toBeNull();
  });

  it('entering again is a no-op for the same session and CANDIDATE_EXISTS for another', () => {
    const d = withSessions(2);
    const first = enter(d, 'a', 's1').result as ElectionTerm;
    const kvIndex = d.fsm.kvIndex();
    expect(enter(d, 'a', 's1').result).toEqual({ term: first.term, leader: 'a', candidates: ['a'] });
    expect(enter(d, 'a', 's2')).toMatchObject({ result: null, error: { code: 'CANDIDATE_EXISTS' } });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('withdraw by the leader passes the lead to the next in line at a new term', () => {
    const d = withSessions(3);
    enter(d, 'a', 's1');
    enter(d, 'b', 's2');
    const third = enter(d, 'c', 's3').result as ElectionTerm;
    const fresh = nextFence(d);
    expect(fresh).toBeGreaterThan(third.term);
    const out = d.prim('election', 'E', 'withdraw', { candidate: 'a' }, { session: 's1' });
    expect(out.result).toEqual({ term: fresh, leader: 'b', candidates: ['b', 'c'] });
    expect(d.fsm.getKey(holdRowKey({ session: 's1', rowKey: row }))).toBeNull();
    // A follower withdrawing leaves the term alone.
    const follower = d.prim('election', 'E', 'withdraw', { candidate: 'c' }, { session: 's3' });
    expect(follower.result).toEqual({ term: fresh, leader: 'b', candidates: ['b'] });
    // Withdrawing one who is not standing changes nothing.
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('election', 'E', 'withdraw', { candidate: 'zz' }, { session: 's3' }).error).toBeNull();
    expect(d.fsm.kvIndex()).toBe(kvIndex);
  });

  it('withdraw of a candidate by another session is NOT_A_CANDIDATE and changes nothing', () => {
    const d = withSessions(2);
    const first = enter(d, 'a', 's1').result as ElectionTerm;
    enter(d, 'b', 's2');
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('election', 'E', 'withdraw', { candidate: 'a' }, { session: 's2' })).toMatchObject({
      result: null,
      error: { code: 'NOT_A_CANDIDATE', message: expect.stringContaining('evict') },
    });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(term(d)).toEqual({ term: first.term, leader: 'a', candidates: ['a', 'b'] });
  });

  it('anoint puts a candidate first (a new term unless it led already); promote makes it next in line', () => {
    const d = withSessions(4);
    const first = (enter(d, 'a', 's1').result as ElectionTerm).term;
    enter(d, 'b', 's2');
    enter(d, 'c', 's3');
    enter(d, 'd', 's4');
    const promoted = d.prim('election', 'E', 'promote', { candidate: 'd' });
    expect(promoted.result).toEqual({ term: first, leader: 'a', candidates: ['a', 'd', 'b', 'c'] });
    const kvIndex = d.fsm.kvIndex();
    // Promoting the leader or the one next in line changes nothing.
    expect(d.prim('election', 'E', 'promote', { candidate: 'a' }).result).toMatchObject({ term: first });
    expect(d.prim('election', 'E', 'promote', { candidate: 'd' }).result).toMatchObject({ term: first });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    const fresh = nextFence(d);
    expect(fresh).toBeGreaterThan(first);
    const anointed = d.prim('election', 'E', 'anoint', { candidate: 'c' });
    expect(anointed.result).toEqual({ term: fresh, leader: 'c', candidates: ['c', 'a', 'd', 'b'] });
    expect(d.prim('election', 'E', 'anoint', { candidate: 'c' }).result).toMatchObject({
      term: fresh,
      leader: 'c',
    });
    expect(d.prim('election', 'E', 'anoint', { candidate: 'zz' }).error?.code).toBe('NOT_A_CANDIDATE');
    expect(d.prim('election', 'E', 'promote', { candidate: 'zz' }).error?.code).toBe('NOT_A_CANDIDATE');
  });

  it('evict removes any candidate, whoever asks; the term moves only when it was the leader', () => {
    const d = withSessions(3);
    const first = (enter(d, 'a', 's1').result as ElectionTerm).term;
    enter(d, 'b', 's2');
    enter(d, 'c', 's3');
    expect(d.prim('election', 'E', 'evict', { candidate: 'b' }).result).toEqual({
      term: first,
      leader: 'a',
      candidates: ['a', 'c'],
    });
    const fresh = nextFence(d);
    expect(fresh).toBeGreaterThan(first);
    const evicted = d.prim('election', 'E', 'evict', { candidate: 'a' });
    expect(evicted.result).toEqual({ term: fresh, leader: 'c', candidates: ['c'] });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('election', 'E', 'evict', { candidate: 'a' }).result).toMatchObject({ term: fresh });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    const lastTerm = nextFence(d);
    expect(lastTerm).toBeGreaterThan(fresh);
    const last = d.prim('election', 'E', 'evict', { candidate: 'c' });
    expect(last.result).toEqual({ term: lastTerm, leader: null, candidates: [] });
    expect(
      ['s1', 's2', 's3'].filter((s) => d.fsm.getKey(holdRowKey({ session: s, rowKey: row })) !== null),
    ).toEqual([]);
  });

  it('the leader’s session destroyed: the next candidate leads at a new term; a follower’s: the term stays', () => {
    const d = withSessions(3);
    enter(d, 'a', 's1');
    enter(d, 'a2', 's1');
    enter(d, 'b', 's2');
    const third = enter(d, 'c', 's3').result as ElectionTerm;
    d.destroySession('s2');
    expect(term(d)).toEqual({ term: third.term, leader: 'a', candidates: ['a', 'a2', 'c'] });
    // Both of s1's candidates go; c leads, at one new term (not one per candidate gone).
    const [fresh, second] = nextFences(d, 2);
    d.destroySession('s1');
    expect(term(d)).toEqual({ term: fresh, leader: 'c', candidates: ['c'] });
    expect(fresh).toBeGreaterThan(third.term);
    expect(nextFence(d)).toBe(second);
    const last = nextFence(d);
    d.destroySession('s3');
    expect(term(d)).toEqual({ term: last, leader: null, candidates: [] });
    expect(last).toBeGreaterThan(fresh as number);
  });

  it('the term changes exactly when the leader changes, over a run of every operation', () => {
    const d = withSessions(3);
    const steps: (() => void)[] = [
      () => enter(d, 'a', 's1'),
      () => enter(d, 'b', 's2'),
      () => enter(d, 'c', 's3'),
      () => d.prim('election', 'E', 'promote', { candidate: 'c' }),
      () => d.prim('election', 'E', 'anoint', { candidate: 'b' }),
      () => d.prim('election', 'E', 'anoint', { candidate: 'b' }),
      () => d.prim('election', 'E', 'withdraw', { candidate: 'a' }, { session: 's1' }),
      () => enter(d, 'a', 's1'),
      () => d.prim('election', 'E', 'evict', { candidate: 'b' }),
      () => d.prim('election', 'E', 'evict', { candidate: 'a' }),
      () => d.destroySession('s3'),
      () => enter(d, 'b', 's2'),
      () => d.prim('election', 'E', 'withdraw', { candidate: 'b' }, { session: 's2' }),
    ];
    let changes = 0;
    const terms: number[] = [];
    for (const step of steps) {
      const before = term(d);
      const fresh = nextFence(d);
      const count = fenceCount(d.fsm);
      step();
      const after = term(d);
      if (after.leader !== before.leader) {
        changes++;
        // A new term: the group's next fence, above every earlier term.
        expect(after.term).toBe(fresh);
        expect(fenceParts(after.term).count).toBeGreaterThanOrEqual(d.next - 1);
        expect(terms.every((t) => t < after.term)).toBe(true);
        terms.push(after.term);
      } else {
        // The same term, and no fence taken for it.
        expect(after.term).toBe(before.term);
        expect(fenceCount(d.fsm)).toBe(count);
      }
    }
    expect(changes).toBe(6);
  });
});
