/** Flow control: proposal limits, the inflight window and message size limits. */
import { describe, expect, it } from 'vitest';
import { RaftErrorCode } from '../errors.js';
import { entriesSizeBytes } from '../size.js';
import { TestNetwork } from '../testing/network.js';
import type { AppendMessage, Message } from '../types.js';

const three = ['a', 'b', 'c'];
const bytes = (n: number, fill = 120) => new Uint8Array(n).fill(fill);
const appsTo = (messages: readonly Message[], id: string): AppendMessage[] =>
  messages.filter((m): m is AppendMessage => m.type === 'app' && m.to === id);

describe('proposal limits', () => {
  it('refuses proposals past uncommittedBytesMax until entries commit (UNCOMMITTED_BYTES_EXCEEDED)', () => {
    const net = new TestNetwork({ voters: three, node: { uncommittedBytesMax: 100, proposalBytesMax: 50 } });
    net.elect('a');
    net.cutLink({ from: 'a', to: 'b' });
    net.cutLink({ from: 'a', to: 'c' });
    expect(net.raw('a').propose(bytes(40)).ok).toBe(true);
    expect(net.raw('a').propose(bytes(40)).ok).toBe(true);
    const refused = net.raw('a').propose(bytes(40));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.code).toBe(RaftErrorCode.UncommittedBytesExceeded);
    // 20 more bytes still fit
    expect(net.raw('a').propose(bytes(20)).ok).toBe(true);
    net.settle();
    net.heal();
    net.tickAll(1);
    expect(net.raw('a').status().commit).toBe(4);
    expect(net.raw('a').propose(bytes(40)).ok).toBe(true);
  });

  it('refuses a single proposal larger than proposalBytesMax (PROPOSAL_TOO_LARGE)', () => {
    const net = new TestNetwork({ voters: three, node: { uncommittedBytesMax: 100, proposalBytesMax: 50 } });
    net.elect('a');
    const refused = net.raw('a').propose(bytes(51));
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.code).toBe(RaftErrorCode.ProposalTooLarge);
    expect(net.raw('a').propose(bytes(50)).ok).toBe(true);
  });

  it('a follower refuses proposals with NOT_LEADER naming the leader', () => {
    const net = new TestNetwork({ voters: three });
    net.elect('a');
    const result = net.raw('c').propose(bytes(1));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatchObject({ code: RaftErrorCode.NotLeader, leaderId: 'a' });
  });
});

describe('the inflight window', () => {
  it('caps the AppendEntries in flight to an unresponsive follower, and recovers when it answers again', () => {
    const net = new TestNetwork({ voters: three, node: { inflightMessagesMax: 3, messageEntriesMax: 1 } });
    net.elect('a');
    net.propose('a', 'warm-up');
    expect(net.raw('a').status().progress?.get('c')?.state).toBe('replicate');
    net.isolate('c');
    const from = net.sent.length;
    for (let i = 0; i < 10; i++) net.propose('a', `x${i}`);
    const sent = appsTo(net.sent.slice(from), 'c').filter((m) => m.entries.length > 0);
    expect(sent).toHaveLength(3);
    expect(net.commands('b')).toHaveLength(11);
    // c comes back: it catches up on everything
    net.heal();
    net.tickAll(5);
    expect(net.commands('c')).toEqual(net.commands('a'));
  });

  it('recovers when every acknowledgement in a full window was lost', () => {
    const net = new TestNetwork({ voters: three, node: { inflightMessagesMax: 2, messageEntriesMax: 1 } });
    net.elect('a');
    net.propose('a', 'warm-up');
    // c receives everything, but its answers are lost
    net.cutLink({ from: 'c', to: 'a' });
    for (let i = 0; i < 5; i++) net.propose('a', `x${i}`);
    net.heal();
    net.tickAll(5);
    expect(net.raw('a').status().progress?.get('c')?.match).toBe(net.raw('a').status().lastIndex);
    expect(net.commands('c')).toEqual(net.commands('a'));
  });
});

describe('message size limits', () => {
  it('AppendEntries respect messageEntriesMax and messageBytesMax', () => {
    const net = new TestNetwork({ voters: three, node: { messageEntriesMax: 3, messageBytesMax: 200 } });
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 20; i++) net.raw('a').propose(bytes(30, 65 + i));
    net.settle();
    const from = net.sent.length;
    net.heal();
    net.tickAll(3);
    const apps = appsTo(net.sent.slice(from), 'c').filter((m) => m.entries.length > 0);
    expect(apps.length).toBeGreaterThanOrEqual(7);
    for (const m of apps) {
      expect(m.entries.length).toBeLessThanOrEqual(3);
      expect(entriesSizeBytes(m.entries)).toBeLessThanOrEqual(200);
    }
    expect(net.commands('c')).toHaveLength(20);
  });

  it('an entry larger than messageBytesMax still goes, alone', () => {
    const net = new TestNetwork({ voters: three, node: { messageBytesMax: 100 } });
    net.elect('a');
    const from = net.sent.length;
    expect(net.raw('a').propose(bytes(500)).ok).toBe(true);
    net.raw('a').propose(bytes(10));
    net.settle();
    const apps = appsTo(net.sent.slice(from), 'b').filter((m) => m.entries.length > 0);
    for (const m of apps)
      if (m.entries.some((e) => e.data.byteLength === 500)) expect(m.entries).toHaveLength(1);
    expect(net.node('b').applied.some((e) => e.data.byteLength === 500)).toBe(true);
  });

  it('hands committed entries to apply within applyBytesMax per Ready', () => {
    const net = new TestNetwork({ voters: three, node: { applyBytesMax: 100 } });
    net.elect('a');
    for (let i = 0; i < 10; i++) net.raw('a').propose(bytes(40));
    net.settle();
    expect(net.commands('a')).toHaveLength(10);
    for (const { ready } of net.readys) {
      if (ready.committedEntries.length > 1)
        expect(entriesSizeBytes(ready.committedEntries)).toBeLessThanOrEqual(100);
    }
  });
});
