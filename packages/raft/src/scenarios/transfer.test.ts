/** Leadership transfer with TimeoutNow. */
import { describe, expect, it } from 'vitest';
import { RaftErrorCode } from '../errors.js';
import { TestNetwork } from '../testing/network.js';
import type { Message } from '../types.js';

const three = ['a', 'b', 'c'];

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date target at once: TimeoutNow, then a campaign that skips PreVote and leases', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.propose('a', 'x');
    const from = net.sent.length;
    expect(net.raw('a').transferLeader('b').ok).toBe(true);
    net.settle();
    const sent = net.sent.slice(from);
    expect(sent[0]).toMatchObject({ type: 'timeoutNow', from: 'a', to: 'b', term: 1 });
    const campaign = sent.filter((m) => m.type === 'vote' || m.type === 'preVote');
    // no PreVote round; the vote requests carry the transfer flag so c ignores its lease
    expect(campaign.map((m) => m.type)).toEqual(['vote', 'vote']);
    expect(campaign.every((m) => m.type === 'vote' && m.transfer)).toBe(true);
    expect(net.leaders()).toEqual(['b']);
    expect(net.raw('b').status().term).toBe(2);
    expect(net.raw('a').status()).toMatchObject({ role: 'follower', leaderId: 'b', leadTransferee: null });
    net.propose('b', 'y');
    for (const id of three) expect(net.commands(id)).toEqual(['x', 'y']);
  });

  it('catches a lagging target up before sending TimeoutNow', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.cutLink({ from: 'a', to: 'c' });
    net.propose('a', 'x');
    net.propose('a', 'y');
    expect(net.raw('a').status().progress?.get('c')?.match).toBe(1);
    net.heal();
    const from = net.sent.length;
    expect(net.raw('a').transferLeader('c').ok).toBe(true);
    // TimeoutNow waits until c has everything
    const pending = net.raw('a').status();
    expect(pending.leadTransferee).toBe('c');
    net.settle();
    const sent = net.sent.slice(from);
    const toC = sent.filter((m) => m.from === 'a' && m.to === 'c').map((m) => m.type);
    expect(toC.indexOf('app')).toBeGreaterThanOrEqual(0);
    expect(toC.indexOf('app')).toBeLessThan(toC.indexOf('timeoutNow'));
    expect(net.leaders()).toEqual(['c']);
    net.propose('c', 'z');
    for (const id of three) expect(net.commands(id)).toEqual(['x', 'y', 'z']);
  });

  it('refuses proposals during the transfer and abandons it after an election timeout if the target is unreachable', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.isolate('c');
    expect(net.raw('a').transferLeader('c').ok).toBe(true);
    const refused = net.propose('a', 'x');
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.code).toBe(RaftErrorCode.TransferInProgress);
    const change = net.raw('a').proposeConfChange({ type: 'addLearner', nodeId: 'd' });
    expect(change.ok).toBe(false);
    if (!change.ok) expect(change.error.code).toBe(RaftErrorCode.TransferInProgress);
    net.tickAll(9);
    expect(net.raw('a').status().leadTransferee).toBe('c');
    net.tickAll(1);
    expect(net.raw('a').status()).toMatchObject({ role: 'leader', leadTransferee: null, term: 1 });
    expect(net.propose('a', 'x').ok).toBe(true);
    expect(net.commands('b')).toEqual(['x']);
  });

  it('refuses an invalid target, and a transfer asked of a follower', () => {
    const net = new TestNetwork({ voters: three, learners: ['l'] });
    net.elect('a');
    for (const target of ['a', 'l', 'nobody']) {
      const result = net.raw('a').transferLeader(target);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe(RaftErrorCode.TransferTargetInvalid);
    }
    const follower = net.raw('b').transferLeader('c');
    expect(follower.ok).toBe(false);
    if (!follower.ok) expect(follower.error).toMatchObject({ code: RaftErrorCode.NotLeader, leaderId: 'a' });
  });

  it('a transfer vote is granted despite the lease, but an ordinary campaign is not', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    // b campaigns on its own: c and a heard from a just now and ignore it
    net.campaign('b');
    expect(net.leaders()).toEqual(['a']);
    expect(net.raw('b').status().term).toBe(1);
    const votes: Message[] = net.sent.filter((m) => m.type === 'preVoteResp' && m.to === 'b');
    expect(votes).toEqual([]);
  });
});
