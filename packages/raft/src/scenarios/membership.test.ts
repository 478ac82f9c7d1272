/** Single-server membership changes, applied when their entry is applied. */
import { describe, expect, it } from 'vitest';
import { decodeConfChange } from '../confchange/confchange.js';
import { RaftErrorCode } from '../errors.js';
import { TestNetwork } from '../testing/network.js';
import { ConfChangeType, EntryType } from '../types.js';

const addLearner = (nodeId: string) => ({ type: ConfChangeType.AddLearner, nodeId });
const addVoter = (nodeId: string) => ({ type: ConfChangeType.AddVoter, nodeId });
const removeNode = (nodeId: string) => ({ type: ConfChangeType.RemoveNode, nodeId });

describe('learners', () => {
  it('receive and apply the log but neither vote nor campaign', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'], learners: ['l'] });
    net.elect('a');
    net.propose('a', 'x');
    expect(net.commands('l')).toEqual(['x']);
    // a campaign asks only voters
    const votes = net.sent.filter((m) => m.type === 'vote' || m.type === 'preVote');
    expect(votes.some((m) => m.to === 'l')).toBe(false);
    // a learner never campaigns, however long it hears nothing
    net.isolate('l');
    net.tickAll(100);
    expect(net.raw('l').status()).toMatchObject({ role: 'follower', term: 1 });
    net.raw('l').campaign();
    expect(net.raw('l').status().role).toBe('follower');
  });

  it('do not count toward commit', () => {
    // two voters and a learner: the learner's copy is not a majority
    const net = new TestNetwork({ voters: ['a', 'b'], learners: ['l'] });
    net.elect('a');
    net.cutLink({ from: 'a', to: 'b' });
    const result = net.propose('a', 'x');
    expect(result.ok).toBe(true);
    expect(net.raw('a').status().progress?.get('l')?.match).toBe(2);
    expect(net.raw('a').status().commit).toBe(1);
    expect(net.commands('l')).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect(net.raw('a').status().commit).toBe(2);
    expect(net.commands('l')).toEqual(['x']);
  });
});

describe('membership changes', () => {
  it('adds a learner, promotes it to voter, then removes a member', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.propose('a', 'x');
    net.addBlankNode('d');
    expect(net.raw('a').proposeConfChange(addLearner('d')).ok).toBe(true);
    net.settle();
    net.tickAll(2);
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(net.raw(id).status().confState).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    }
    expect(net.commands('d')).toEqual(['x']);

    expect(net.raw('a').proposeConfChange(addVoter('d')).ok).toBe(true);
    net.settle();
    net.tickAll(1);
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(net.raw(id).status().confState).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    }
    // d now counts: with b and c down, a and d are not a majority of four...
    net.isolate('b');
    net.isolate('c');
    net.propose('a', 'y');
    expect(net.commands('a')).toEqual(['x']);
    // ...but with c back they are three of four
    net.heal();
    net.isolate('b');
    net.tickAll(1);
    expect(net.commands('a')).toEqual(['x', 'y']);

    expect(net.raw('a').proposeConfChange(removeNode('b')).ok).toBe(true);
    net.settle();
    net.tickAll(1);
    for (const id of ['a', 'c', 'd']) {
      expect(net.raw(id).status().confState).toEqual({ voters: ['a', 'c', 'd'], learners: [] });
    }
    // three voters: a and c commit without b or d
    net.isolate('d');
    net.propose('a', 'z');
    expect(net.commands('c')).toEqual(['x', 'y', 'z']);
  });

  it("replicates a change's context to every member, the blank joiner included", () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.addBlankNode('d');
    const context = new TextEncoder().encode('d lives at 10.0.0.4:8300');
    expect(net.raw('a').proposeConfChange({ ...addLearner('d'), context }).ok).toBe(true);
    net.settle();
    net.tickAll(2);
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(net.raw(id).status().confState).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
      const changes = net
        .node(id)
        .applied.filter((e) => e.type === EntryType.ConfChange)
        .map((e) => decodeConfChange(e.data));
      expect(changes).toEqual([{ type: ConfChangeType.AddLearner, nodeId: 'd', context }]);
    }
  });

  it('refuses a second change while one is pending (CONF_CHANGE_PENDING)', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.addBlankNode('d');
    net.addBlankNode('e');
    expect(net.raw('a').proposeConfChange(addLearner('d')).ok).toBe(true);
    const second = net.raw('a').proposeConfChange(addLearner('e'));
    expect(second.ok).toBe(false);
    if (!second.ok) expect(second.error.code).toBe(RaftErrorCode.ConfChangePending);
    // still pending while committed but not yet applied by the leader
    net.pause('a');
    net.settle();
    const third = net.raw('a').proposeConfChange(addLearner('e'));
    expect(third.ok).toBe(false);
    // applied: the next change is accepted
    net.resume('a');
    expect(net.raw('a').proposeConfChange(addLearner('e')).ok).toBe(true);
  });

  it("refuses a change until the new leader's no-op is applied", () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.addBlankNode('d');
    // the no-op cannot commit: every AppendEntries is held back
    net.hold = (m) => m.type === 'app';
    net.elect('a');
    const early = net.raw('a').proposeConfChange(addLearner('d'));
    expect(early.ok).toBe(false);
    if (!early.ok) expect(early.error.code).toBe(RaftErrorCode.ConfChangePending);
    net.hold = null;
    net.release();
    expect(net.raw('a').status().applied).toBe(1);
    expect(net.raw('a').proposeConfChange(addLearner('d')).ok).toBe(true);
  });

  it('a leader of a later term whose log is all applied still waits for its own no-op (the 2015 single-server bug)', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.propose('a', 'x');
    net.tickAll(1);
    net.addBlankNode('d');
    net.isolate('a');
    net.hold = (m) => m.type === 'app';
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
    const leader = net.leaders().find((id) => id !== 'a') ?? '';
    const status = net.raw(leader).status();
    // everything before the new no-op is applied; the no-op itself is not committed
    expect(status.applied).toBe(2);
    expect(status.lastIndex).toBe(3);
    const early = net.raw(leader).proposeConfChange(addLearner('d'));
    expect(early.ok).toBe(false);
    if (!early.ok) expect(early.error.code).toBe(RaftErrorCode.ConfChangePending);
    net.hold = null;
    net.release();
    expect(net.raw(leader).status().applied).toBe(3);
    expect(net.raw(leader).proposeConfChange(addLearner('d')).ok).toBe(true);
  });

  it('validates changes against the membership (CONF_CHANGE_INVALID)', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    for (const change of [addVoter('b'), removeNode('zz'), addLearner('bad id')]) {
      const result = net.raw('a').proposeConfChange(change);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe(RaftErrorCode.ConfChangeInvalid);
    }
    const follower = net.raw('b').proposeConfChange(addLearner('d'));
    expect(follower.ok).toBe(false);
    if (!follower.ok) expect(follower.error.code).toBe(RaftErrorCode.NotLeader);
  });

  it('a node does not campaign while it has a committed but unapplied membership change', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.addBlankNode('d');
    // b learns that the change is committed, but its Ready (the apply) is not processed
    net.pause('b');
    expect(net.raw('a').proposeConfChange(addLearner('d')).ok).toBe(true);
    net.settle();
    net.raw('b').step({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 2, round: 100 });
    const b = net.raw('b').status();
    expect(b.commit).toBe(2);
    expect(b.applied).toBe(1);
    // however long b goes without hearing from a, it does not campaign...
    for (let i = 0; i < 50; i++) net.raw('b').tick();
    net.raw('b').campaign();
    expect(net.raw('b').status()).toMatchObject({ role: 'follower', term: 1 });
    // ...until it has applied the change
    net.resume('b');
    expect(net.raw('b').status().applied).toBe(2);
    net.isolate('a');
    net.tickUntil(() => net.leaders().some((id) => id !== 'a'), 100);
  });

  it('a leader that removes itself steps down once the change applies, and the rest elect a leader', () => {
    const net = new TestNetwork({ voters: ['a', 'b', 'c'] });
    net.elect('a');
    net.propose('a', 'x');
    expect(net.raw('a').proposeConfChange(removeNode('a')).ok).toBe(true);
    net.settle();
    expect(net.raw('a').status().role).toBe('follower');
    expect(net.raw('a').status().confState.voters).toEqual(['b', 'c']);
    net.tickUntil(() => net.leaders().length === 1, 100);
    const leader = net.leaders()[0] ?? '';
    expect(['b', 'c']).toContain(leader);
    net.propose(leader, 'y');
    expect(net.commands(leader === 'b' ? 'c' : 'b')).toEqual(['x', 'y']);
    // the removed node never campaigns again
    net.tickAll(100);
    expect(net.raw('a').status().role).toBe('follower');
  });
});
