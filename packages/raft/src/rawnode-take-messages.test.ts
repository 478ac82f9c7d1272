/**
 * RawNode.takeMessages: while a Ready is in flight (its write not yet durable), the
 * messages that depend on nothing durable still leave, and those that acknowledge state
 * wait for the next Ready, after its write.
 */
import { describe, expect, it } from 'vitest';
import { LoneNode, msg } from './testing/lone-node.js';

function leader(): LoneNode {
  const a = new LoneNode({ id: 'a', voters: ['a', 'b', 'c'] });
  a.raw.campaign();
  a.flush();
  a.step(msg.voteResp({ from: 'b', to: 'a', term: 1, reject: false }));
  expect(a.raw.status().role).toBe('leader');
  // Both followers take the leader's first entry, so replication is no longer probing.
  const index = a.raw.status().lastIndex;
  for (const from of ['b', 'c']) {
    a.step({ type: 'appResp', from, to: 'a', term: 1, index, reject: false, hintIndex: 0, hintTerm: 0 });
  }
  return a;
}

describe('RawNode.takeMessages', () => {
  it("gives a leader's heartbeats and appends while its Ready's write is in flight", () => {
    const a = leader();
    a.raw.propose(new Uint8Array([1]));
    const inFlight = a.raw.ready();
    expect(inFlight.entries).toHaveLength(1);
    // The disk is slow: ticks go on, and so do heartbeats, before advance().
    a.raw.tick();
    const heartbeats = a.raw.takeMessages();
    expect(heartbeats.map((m) => m.type)).toEqual(['heartbeat', 'heartbeat']);
    // A proposal made meanwhile waits for the next Ready, to go out with whatever else
    // arrives before it: taken one input at a time, appends would carry one entry each.
    a.raw.propose(new Uint8Array([2]));
    expect(a.raw.takeMessages()).toEqual([]);
    a.storage.append(inFlight.entries);
    a.raw.advance();
    // The next Ready holds the second entry, and none of the messages already taken.
    const next = a.raw.ready();
    expect(next.entries.map((e) => e.data[0])).toEqual([2]);
    expect(next.messages.filter((m) => m.type === 'heartbeat')).toEqual([]);
    expect(next.messages.filter((m) => m.type === 'app').length).toBeGreaterThan(0);
  });

  it("keeps a follower's append acknowledgement for the Ready after its write", () => {
    const b = new LoneNode({ id: 'b', voters: ['a', 'b', 'c'] });
    b.step(msg.heartbeat({ from: 'a', to: 'b', term: 1 }));
    b.raw.step(msg.app({ from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, entries: [entry(1)] }));
    const inFlight = b.raw.ready();
    expect(inFlight.entries).toHaveLength(1);
    expect(inFlight.messagesAfterPersist.map((m) => m.type)).toEqual(['appResp']);
    // A second append arrives while the first write is in flight: its acknowledgement
    // is not taken early, since it would claim entries that are not durable.
    b.raw.step(msg.app({ from: 'a', to: 'b', term: 1, index: 1, logTerm: 1, entries: [entry(2)] }));
    b.raw.step(msg.heartbeat({ from: 'a', to: 'b', term: 1, commit: 0 }));
    expect(b.raw.takeMessages().map((m) => m.type)).toEqual(['heartbeatResp']);
    b.storage.append(inFlight.entries);
    b.raw.advance();
    const next = b.raw.ready();
    expect(next.messagesAfterPersist.map((m) => m.type)).toEqual(['appResp']);
  });
});

function entry(index: number) {
  return { index, term: 1, type: 0, data: new Uint8Array([index]) } as const;
}
