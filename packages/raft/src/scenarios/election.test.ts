/** Elections and replication across failures, as transcripts of a small cluster. */
import { describe, expect, it } from 'vitest';
import { TestNetwork } from '../testing/network.js';
import { EntryType, type Message } from '../types.js';

const three = ['a', 'b', 'c'];
const five = ['a', 'b', 'c', 'd', 'e'];

function only<T>(list: readonly T[]): T {
  expect(list).toHaveLength(1);
  const item = list[0];
  if (item === undefined) throw new Error('empty list');
  return item;
}

describe('elections', () => {
  it('a new leader is elected after the leader is lost, and the cluster goes on', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x=1');
    net.isolate('a');
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
    const leader = only(net.leaders().filter((id) => id !== 'a'));
    expect(net.raw(leader).status().term).toBeGreaterThan(1);
    expect(net.propose(leader, 'x=2').ok).toBe(true);
    for (const id of ['b', 'c']) expect(net.commands(id)).toEqual(['x=1', 'x=2']);
  });

  it('no leader is elected without a majority, and with PreVote no term grows either', () => {
    const net = new TestNetwork({ voters: five });
    net.partition([['a', 'b'], ['c'], ['d'], ['e']]);
    net.tickAll(200);
    expect(net.leaders()).toEqual([]);
    for (const id of five) expect(net.raw(id).status().term).toBe(0);
    // the same in paper mode: terms grow, but nobody wins
    const paper = new TestNetwork({ voters: five, node: { preVote: false, checkQuorum: false } });
    paper.partition([['a', 'b'], ['c'], ['d'], ['e']]);
    paper.tickAll(200);
    expect(paper.leaders()).toEqual([]);
    expect(paper.raw('a').status().term).toBeGreaterThan(3);
    // once a majority can talk again, a leader emerges
    net.heal();
    net.tickUntil(() => net.leaders().length === 1, 100);
  });

  it('a new leader appends a no-op of its term, and commits it', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('b');
    for (const id of three) {
      const first = net.node(id).applied[0];
      expect(first).toMatchObject({ index: 1, term: 1, type: EntryType.Normal });
      expect(first?.data.byteLength).toBe(0);
      expect(net.raw(id).status().commit).toBe(1);
    }
    // the next leader appends its own no-op after the first
    net.isolate('b');
    net.tickUntil(() => net.leaders().some((id) => id !== 'b'), 100);
    const leader = only(net.leaders().filter((id) => id !== 'b'));
    const term = net.raw(leader).status().term;
    const noop = net.node(leader).applied[1];
    expect(noop).toMatchObject({ index: 2, term, type: EntryType.Normal });
    expect(noop?.data.byteLength).toBe(0);
  });

  it('an old leader cut off from the majority has its uncommitted entries overwritten when it rejoins', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x=1');
    net.isolate('a');
    // a still believes it leads: it accepts proposals that can never commit
    expect(net.propose('a', 'lost-1').ok).toBe(true);
    expect(net.propose('a', 'lost-2').ok).toBe(true);
    expect(net.raw('a').status().commit).toBe(2);
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
    const leader = only(net.leaders().filter((id) => id !== 'a'));
    net.propose(leader, 'x=2');
    net.heal();
    net.tickAll(3);
    expect(net.leaders()).toEqual([leader]);
    expect(net.raw('a').status().role).toBe('follower');
    for (const id of three) expect(net.commands(id)).toEqual(['x=1', 'x=2']);
    const aLog = net.node('a').storage;
    expect(aLog.lastIndex()).toBe(net.node(leader).storage.lastIndex());
  });

  it('backtracks over long divergent logs in a few round trips per term, not one per entry', () => {
    const net = new TestNetwork({ voters: five });
    net.elect('a');
    net.propose('a', 'base');
    // a, cut off, piles up 100 entries of term 1 that will never commit
    net.isolate('a');
    for (let i = 0; i < 100; i++) net.raw('a').propose(new TextEncoder().encode(`a-${i}`));
    net.settle();
    // a leader of the other four commits 30 entries, then, cut off, piles up 30 more
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
    const second = only(net.leaders().filter((id) => id !== 'a'));
    for (let i = 0; i < 30; i++) net.raw(second).propose(new TextEncoder().encode(`second-${i}`));
    net.settle();
    net.isolate(second);
    for (let i = 0; i < 30; i++) net.raw(second).propose(new TextEncoder().encode(`second-lost-${i}`));
    net.settle();
    // a third leader, of the remaining three, commits 20 more
    net.tickUntil(() => net.leaders().some((id) => id !== 'a' && id !== second), 100);
    const third = only(net.leaders().filter((id) => id !== 'a' && id !== second));
    for (let i = 0; i < 20; i++) net.raw(third).propose(new TextEncoder().encode(`third-${i}`));
    net.settle();
    expect(net.node('a').storage.lastIndex()).toBe(102);
    expect(net.node(second).storage.lastIndex()).toBe(63);
    expect(net.node(third).storage.lastIndex()).toBe(54);
    // logs: a [1 1 | 1 x100], second [1 1 | 2 x31 | 2 x30], third [1 1 | 2 x31 | 3 x21]
    expect(net.node('a').storage.term(102)).toBe(1);

    const from = net.delivered.length;
    net.heal();
    net.tickAll(2);
    const after = net.delivered.slice(from);
    const rejects = (id: string) =>
      after.filter((m: Message) => m.type === 'appResp' && m.from === id && m.reject).length;
    const appends = (id: string) => after.filter((m: Message) => m.type === 'app' && m.to === id).length;
    // One rejection finds the match point across a whole divergent term.
    expect(rejects('a')).toBeLessThanOrEqual(2);
    expect(rejects(second)).toBeLessThanOrEqual(2);
    expect(appends('a')).toBeLessThanOrEqual(6);
    expect(appends(second)).toBeLessThanOrEqual(6);
    const expected = net.commands(third);
    expect(expected).toHaveLength(1 + 30 + 20);
    for (const id of five) expect(net.commands(id)).toEqual(expected);
  });

  it('every node restarts from its storage alone and the cluster carries on', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    for (let i = 0; i < 5; i++) net.propose('a', `x=${i}`);
    const before = three.map((id) => net.raw(id).status());
    net.restartAll();
    for (const [i, id] of three.entries()) {
      const status = net.raw(id).status();
      // term, vote and log came back from storage; commit too, so the log is re-applied
      expect(status.term).toBe(before[i]?.term);
      expect(status.vote).toBe(before[i]?.vote);
      expect(status.lastIndex).toBe(before[i]?.lastIndex);
      expect(status.role).toBe('follower');
    }
    net.tickUntil(() => net.leaders().length === 1, 100);
    const leader = only(net.leaders());
    net.propose(leader, 'after');
    for (const id of three) expect(net.commands(id)).toEqual(['x=0', 'x=1', 'x=2', 'x=3', 'x=4', 'after']);
  });
});

describe('PreVote and CheckQuorum', () => {
  it('PreVote: a partitioned node that rejoins neither bumps the term nor deposes the leader', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.isolate('c');
    net.tickAll(100);
    // c pre-campaigned many times, but never at a real term
    expect(net.raw('c').status().term).toBe(1);
    net.heal();
    net.tickAll(20);
    expect(net.leaders()).toEqual(['a']);
    for (const id of three) expect(net.raw(id).status().term).toBe(1);
    expect(net.propose('a', 'x').ok).toBe(true);
    expect(net.commands('c')).toEqual(['x']);
  });

  it('without PreVote the same rejoin deposes the leader (the disruption PreVote prevents)', () => {
    const net = new TestNetwork({ voters: three, node: { preVote: false } });
    net.elect('a');
    net.isolate('c');
    net.tickAll(100);
    expect(net.raw('c').status().term).toBeGreaterThan(3);
    net.heal();
    net.tickAll(1);
    expect(net.raw('a').status().term).toBeGreaterThan(1);
    expect(net.raw('a').status().role).not.toBe('leader');
  });

  it('CheckQuorum: an isolated leader steps down within an election timeout', () => {
    const electionTimeoutTicks = 10;
    // isolate it at every phase of its check cycle
    for (let phase = 0; phase < electionTimeoutTicks; phase++) {
      const net = new TestNetwork({ voters: three, node: { electionTimeoutTicks } });
      net.elect('a');
      net.tickAll(phase);
      net.isolate('a');
      let ticks = 0;
      while (net.raw('a').status().role === 'leader' && ticks < 5 * electionTimeoutTicks) {
        net.tick('a');
        ticks++;
      }
      expect(net.raw('a').status().role).toBe('follower');
      expect(ticks).toBeLessThanOrEqual(electionTimeoutTicks);
    }
  });

  it('stays live under a partial partition: a follower that cannot reach the leader does not disrupt it', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.cutLink({ from: 'a', to: 'c' });
    net.cutLink({ from: 'c', to: 'a' });
    // c hears no leader and pre-campaigns through b, which refuses: it hears a
    for (let i = 0; i < 20; i++) {
      net.tickAll(5);
      expect(net.propose('a', `x=${i}`).ok).toBe(true);
    }
    expect(net.leaders()).toEqual(['a']);
    expect(net.raw('a').status().term).toBe(1);
    expect(net.raw('b').status().term).toBe(1);
    expect(net.commands('b')).toHaveLength(20);
    expect(net.commands('a')).toHaveLength(20);
  });
});
