/** The persistence contract between the core and its caller. */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../testing/chaos.js';
import { LoneNode } from '../testing/lone-node.js';
import { TestNetwork } from '../testing/network.js';
import type { MessageType } from '../types.js';

const three = ['a', 'b', 'c'];

describe('messages that must wait for persistence', () => {
  it('vote requests, vote grants and append responses only ever appear in messagesAfterPersist', () => {
    const afterPersist: MessageType[] = ['vote', 'voteResp', 'appResp'];
    const counts = new Map<MessageType, number>();
    for (const seed of [1, 2, 3]) {
      const { net } = runChaos({ seed, voters: ['a', 'b', 'c', 'd', 'e'], ticks: 200 });
      for (const { ready } of net.readys) {
        for (const m of ready.messages) expect(afterPersist).not.toContain(m.type);
        for (const m of ready.messagesAfterPersist) counts.set(m.type, (counts.get(m.type) ?? 0) + 1);
      }
    }
    // the runs did produce each kind
    for (const type of afterPersist) expect(counts.get(type) ?? 0).toBeGreaterThan(0);
  });

  it('a Ready that carries new entries or a new term/vote must be synced; one with only a new commit need not', () => {
    const b = new LoneNode({ id: 'b', voters: three });
    b.raw.step({ type: 'vote', from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, transfer: false });
    const vote = b.raw.ready();
    expect(vote.mustSync).toBe(true);
    b.raw.advance();
    b.raw.step({
      type: 'app',
      from: 'a',
      to: 'b',
      term: 1,
      index: 0,
      logTerm: 0,
      entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array(0) }],
      commit: 0,
    });
    const append = b.raw.ready();
    expect(append.mustSync).toBe(true);
    expect(append.messages).toEqual([]);
    expect(append.messagesAfterPersist.map((m) => m.type)).toEqual(['appResp']);
    b.storage.append(append.entries);
    b.raw.advance();
    b.raw.step({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 1, round: 1 });
    const commit = b.raw.ready();
    expect(commit.hardState).toMatchObject({ commit: 1 });
    expect(commit.mustSync).toBe(false);
    b.raw.advance();
  });
});

describe('the leader counts its own acknowledgement only once its entries are durable', () => {
  it('in a single-node group, nothing commits before advance()', () => {
    const solo = new LoneNode({ id: 'a', voters: ['a'] });
    solo.raw.campaign();
    solo.flush();
    expect(solo.raw.status()).toMatchObject({ role: 'leader', commit: 1 });
    solo.raw.propose(new TextEncoder().encode('x'));
    const ready = solo.raw.ready();
    expect(ready.entries.map((e) => e.index)).toEqual([2]);
    expect(ready.committedEntries).toEqual([]);
    expect(solo.raw.status().commit).toBe(1);
    solo.storage.append(ready.entries);
    solo.raw.advance();
    expect(solo.raw.status().commit).toBe(2);
    expect(solo.raw.ready().committedEntries.map((e) => e.index)).toEqual([2]);
    solo.raw.advance();
  });

  it('with one follower acknowledging, the entry commits only when the leader has persisted it too', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.pause('a');
    net.raw('a').propose(new TextEncoder().encode('x'));
    // a hands out its Ready: the entry to persist and the AppendEntries to send
    const ready = net.raw('a').ready();
    expect(ready.entries.map((e) => e.index)).toEqual([2]);
    // only b receives it; b persists and acknowledges
    for (const m of [...ready.messages, ...ready.messagesAfterPersist])
      if (m.to === 'b') net.raw('b').step(m);
    net.settle();
    const before = net.raw('a').status();
    expect(before.progress?.get('b')?.match).toBe(2);
    // b and a are a majority of three, but a's copy is not durable yet
    expect(before.commit).toBe(1);
    net.node('a').storage.append(ready.entries);
    if (ready.hardState !== null) net.node('a').storage.setHardState(ready.hardState);
    net.raw('a').advance();
    expect(net.raw('a').status().commit).toBe(2);
    net.resume('a');
    net.tickAll(1);
    for (const id of three) expect(net.commands(id)).toEqual(['x']);
  });

  it('a follower that crashes before persisting loses nothing it acknowledged', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    net.pause('c');
    net.propose('a', 'x');
    // c received x but never processed its Ready: nothing was persisted or acknowledged
    expect(net.raw('a').status().progress?.get('c')?.match).toBe(1);
    net.restart('c');
    expect(net.node('c').storage.lastIndex()).toBe(1);
    net.tickAll(2);
    expect(net.commands('c')).toEqual(['x']);
  });
});
