/**
 * The invariants the core asserts: term and commit never go back, one vote per term, one
 * leader per term. Each is shown holding under stale input, and firing when forced.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../config.js';
import { RaftInvariantError } from '../errors.js';
import { createPrng } from '../prng.js';
import { Raft } from '../raft.js';
import { MemoryStorage } from '../storage.js';
import { entries } from '../testing/entries.js';
import { LoneNode, msg } from '../testing/lone-node.js';
import { TestNetwork } from '../testing/network.js';
import type { Message } from '../types.js';

const three = ['a', 'b', 'c'];

function rawRaft(term: number): Raft {
  const storage = MemoryStorage.bootstrap({ voters: three });
  storage.append(entries(1, [1, 1, 2]));
  storage.setHardState({ term, vote: null, commit: 2 });
  return new Raft({ config: resolveConfig({ id: 'b', prng: createPrng(1) }), storage });
}

describe('term never decreases', () => {
  it('stale messages of every kind leave the term where it is', () => {
    const b = new LoneNode({
      id: 'b',
      voters: three,
      logTerms: [1, 1, 2],
      hardState: { term: 5, vote: null, commit: 2 },
      config: { preVote: true, checkQuorum: true },
    });
    const base = { from: 'a', to: 'b', term: 3 };
    const stale: Message[] = [
      msg.app({ ...base, index: 3, logTerm: 2 }),
      msg.heartbeat({ ...base, commit: 3 }),
      msg.vote({ ...base, index: 9, logTerm: 3 }),
      msg.vote({ ...base, index: 9, logTerm: 3, pre: true }),
      msg.voteResp({ ...base, reject: false }),
      { type: 'appResp', ...base, index: 3, reject: false, hintIndex: 0, hintTerm: 0 },
      { type: 'timeoutNow', ...base },
      {
        type: 'snap',
        ...base,
        metadata: { index: 9, term: 3, confState: { voters: three, learners: [] } },
        offset: 0,
        data: new Uint8Array(0),
        done: true,
      },
    ];
    for (const m of stale) {
      const out = b.step(m);
      expect(b.raw.status()).toMatchObject({ term: 5, role: 'follower', commit: 2, lastIndex: 3 });
      // answers, if any, carry the newer term so the sender catches up
      for (const answer of out) expect(answer.term).toBe(5);
    }
  });

  it('fires when forced: a transition to an older term is an invariant violation', () => {
    const raft = rawRaft(5);
    expect(() => raft.becomeFollower({ term: 4, leaderId: null })).toThrow(/term went backwards: 5 -> 4/);
  });
});

describe('commit never decreases', () => {
  it('a heartbeat or an append with an older commit does not move it back', () => {
    const b = new LoneNode({
      id: 'b',
      voters: three,
      logTerms: [1, 1, 2],
      hardState: { term: 2, vote: null, commit: 3 },
    });
    b.step(msg.heartbeat({ from: 'a', to: 'b', term: 2, commit: 1 }));
    b.step(msg.app({ from: 'a', to: 'b', term: 2, index: 3, logTerm: 2, commit: 1 }));
    expect(b.raw.status().commit).toBe(3);
    expect(b.storage.initialState().hardState.commit).toBe(3);
  });

  it('fires when forced: restoring a snapshot below commit is an invariant violation', () => {
    const raft = rawRaft(2);
    expect(() =>
      raft.log.restore({
        metadata: { index: 1, term: 1, confState: { voters: three, learners: [] } },
        data: new Uint8Array(0),
      }),
    ).toThrow(RaftInvariantError);
  });

  it('fires when a follower lost entries it acknowledged: commit may not pass its last index', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    // c breaks the persistence contract: it acknowledges entries it never writes
    net.skipPersist.add('c');
    net.propose('a', 'x');
    net.cutLink({ from: 'a', to: 'c' });
    net.propose('a', 'y');
    net.restart('c');
    net.skipPersist.delete('c');
    net.heal();
    // the leader believes c holds index 2 and tells it to commit that far
    expect(() => net.tickAll(1)).toThrow(/commit 2 is past the last index 1/);
  });
});

describe('at most one vote per term', () => {
  it('a vote survives a restart: the node refuses a second candidate in the same term', () => {
    const net = new TestNetwork({ voters: three, node: { preVote: false } });
    net.isolate('c');
    net.elect('a');
    expect(net.node('b').storage.initialState().hardState).toMatchObject({ term: 1, vote: 'a' });
    net.restart('b');
    const out: Message[] = [];
    net.raw('b').step(msg.vote({ from: 'c', to: 'b', term: 1, index: 5, logTerm: 1 }));
    const ready = net.raw('b').ready();
    out.push(...ready.messages, ...ready.messagesAfterPersist);
    net.raw('b').advance();
    expect(out).toEqual([{ type: 'voteResp', from: 'b', to: 'c', term: 1, reject: true }]);
  });

  it('fires when forced: a node that sends its vote before persisting it and crashes votes twice', () => {
    const net = new TestNetwork({ voters: three });
    // c breaks the persistence contract: its vote for a leaves, but never reaches its disk
    net.skipPersist.add('c');
    net.cutLink({ from: 'a', to: 'b' });
    net.cutLink({ from: 'b', to: 'a' });
    net.elect('a');
    net.restart('c');
    net.skipPersist.delete('c');
    net.isolate('a');
    // c, back at term 0, grants b its vote for term 1 too
    expect(() => net.campaign('b')).toThrow(/c: voted twice in term 1: for a, then for b/);
  });

  it('...and without the network checker, the core itself stops at the second leader of the term', () => {
    const net = new TestNetwork({ voters: three, checkInvariants: false });
    net.skipPersist.add('c');
    net.cutLink({ from: 'a', to: 'b' });
    net.cutLink({ from: 'b', to: 'a' });
    net.elect('a');
    net.restart('c');
    net.skipPersist.delete('c');
    net.isolate('a');
    net.elect('b');
    expect(net.raw('a').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(net.raw('b').status()).toMatchObject({ role: 'leader', term: 1 });
    net.heal();
    expect(() => net.tickAll(1)).toThrow(/two leaders in term 1/);
  });
});

describe('two leaders in one term', () => {
  it('a leader that hears AppendEntries, a heartbeat or a snapshot from another leader of its term stops', () => {
    const make = () => {
      const a = new LoneNode({ id: 'a', voters: three });
      a.raw.campaign();
      a.flush();
      a.step(msg.voteResp({ from: 'b', to: 'a', term: 1, reject: false }));
      expect(a.raw.status().role).toBe('leader');
      return a;
    };
    const from = { from: 'c', to: 'a', term: 1 };
    expect(() => make().raw.step(msg.app({ ...from, index: 0, logTerm: 0 }))).toThrow(RaftInvariantError);
    expect(() => make().raw.step(msg.heartbeat(from))).toThrow(/two leaders in term 1: a and c/);
    expect(() =>
      make().raw.step({
        type: 'snap',
        ...from,
        metadata: { index: 5, term: 1, confState: { voters: three, learners: [] } },
        offset: 0,
        data: new Uint8Array(0),
        done: true,
      }),
    ).toThrow(RaftInvariantError);
  });

  it('campaign() on a leader is a harmless no-op', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.raw('a').campaign();
    net.settle();
    expect(net.raw('a').status()).toMatchObject({ role: 'leader', term: 1 });
  });
});
