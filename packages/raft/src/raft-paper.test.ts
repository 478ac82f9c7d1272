/**
 * One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an
 * Understandable Consensus Algorithm"): the Figure 3 properties, the receiver rules of
 * Figure 2, the election restriction of §5.4.1 and the Figure 8 commit rule of §5.4.2.
 */
import { describe, expect, it } from 'vitest';
import type { Prng } from './prng.js';
import { runChaos } from './testing/chaos.js';
import { entries } from './testing/entries.js';
import { LoneNode, msg } from './testing/lone-node.js';
import { TestNetwork } from './testing/network.js';
import type { Entry, Message, NodeId } from './types.js';

const five = ['s1', 's2', 's3', 's4', 's5'];

function persistedLog(net: TestNetwork, id: NodeId): Entry[] {
  const storage = net.node(id).storage;
  const lo = storage.firstIndex();
  const hi = storage.lastIndex() + 1;
  return lo >= hi ? [] : storage.entries({ lo, hi, bytesMax: Number.MAX_SAFE_INTEGER });
}

function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.index === b.index &&
    a.term === b.term &&
    a.type === b.type &&
    Array.from(a.data).join() === Array.from(b.data).join()
  );
}

function granted(messages: Message[], type: 'voteResp' | 'preVoteResp' = 'voteResp'): boolean[] {
  return messages.filter((m) => m.type === type).map((m) => m.type === type && !m.reject);
}

/** Campaign until `id` leads (a first campaign may only teach it a newer term). */
function campaignUntilLeader(net: TestNetwork, id: NodeId, tries = 3): void {
  for (let i = 0; i < tries && net.raw(id).status().role !== 'leader'; i++) net.campaign(id);
  expect(net.raw(id).status().role).toBe('leader');
}

describe('Figure 3: the properties Raft guarantees at all times', () => {
  // Ten seeded runs of five servers under shifting partitions, 5% message loss, crashes
  // and a steady stream of proposals. The network checks Election Safety and State
  // Machine Safety after every Ready; the callbacks check the other three properties.
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

  it('Election Safety: at most one leader can be elected in a given term', () => {
    for (const seed of seeds) {
      const leaderOfTerm = new Map<number, NodeId>();
      runChaos({
        seed,
        voters: five,
        ticks: 300,
        onTick: (net) => {
          for (const id of net.leaders()) {
            const term = net.raw(id).status().term;
            expect(leaderOfTerm.get(term) ?? id).toBe(id);
            leaderOfTerm.set(term, id);
          }
        },
      });
      // The runs do elect leaders, in several terms.
      expect(leaderOfTerm.size).toBeGreaterThan(1);
    }
  });

  it('Leader Append-Only: a leader never overwrites or deletes entries in its log', () => {
    for (const seed of seeds) {
      const seen = new Map<NodeId, { term: number; log: Entry[] }>();
      let checks = 0;
      runChaos({
        seed,
        voters: five,
        ticks: 300,
        onTick: (net) => {
          for (const id of net.nodes.keys()) {
            const status = net.raw(id).status();
            if (status.role !== 'leader') {
              seen.delete(id);
              continue;
            }
            const log = persistedLog(net, id);
            const before = seen.get(id);
            if (before !== undefined && before.term === status.term) {
              expect(log.length).toBeGreaterThanOrEqual(before.log.length);
              before.log.forEach((entry, i) => {
                expect(sameEntry(entry, log[i])).toBe(true);
              });
              checks++;
            }
            seen.set(id, { term: status.term, log });
          }
        },
      });
      expect(checks).toBeGreaterThan(0);
    }
  });

  it('Log Matching: logs with an entry of the same index and term are identical up to it', () => {
    for (const seed of seeds) {
      let compared = 0;
      const check = (net: TestNetwork) => {
        const logs = five.map((id) => persistedLog(net, id));
        for (const a of logs)
          for (const b of logs) {
            if (a === b) continue;
            // The largest index where both logs hold an entry of the same term...
            let last = -1;
            for (let i = 0; i < Math.min(a.length, b.length); i++) {
              if (a[i]?.term === b[i]?.term) last = i;
            }
            // ...and every entry up to it is identical.
            for (let i = 0; i <= last; i++) expect(sameEntry(a[i], b[i])).toBe(true);
            if (last >= 0) compared++;
          }
      };
      runChaos({ seed, voters: five, ticks: 300, onTick: (net, tick) => tick % 10 === 0 && check(net) });
      expect(compared).toBeGreaterThan(0);
    }
  });

  it('Leader Completeness: an entry committed in a term is in the log of every leader of a later term', () => {
    for (const seed of seeds) {
      // index -> the term of the leader that committed it, and the entry's own term
      const committed = new Map<number, { inTerm: number; entryTerm: number }>();
      let checks = 0;
      runChaos({
        seed,
        voters: five,
        ticks: 300,
        onTick: (net) => {
          for (const id of net.leaders()) {
            const status = net.raw(id).status();
            const storage = net.node(id).storage;
            for (const [index, c] of committed) {
              if (c.inTerm >= status.term) continue;
              expect(index).toBeLessThanOrEqual(storage.lastIndex());
              expect(storage.term(index)).toBe(c.entryTerm);
              checks++;
            }
            for (let index = 1; index <= status.commit; index++) {
              const known = committed.get(index);
              const entryTerm = storage.term(index);
              if (entryTerm === null) continue;
              if (known === undefined || known.inTerm > status.term) {
                committed.set(index, { inTerm: status.term, entryTerm });
              }
            }
          }
        },
      });
      expect(checks).toBeGreaterThan(0);
    }
  });

  it('State Machine Safety: no two servers apply different entries at the same index', () => {
    for (const seed of seeds) {
      const { net, proposed } = runChaos({ seed, voters: five, ticks: 300 });
      // Heal everything: the cluster converges and every server applies the same commands.
      net.heal();
      net.filter = null;
      net.tickUntil(() => net.leaders().length === 1, 200);
      const leader = net.leaders()[0] ?? '';
      net.propose(leader, 'final');
      net.tickAll(3);
      const expected = net.commands(leader);
      expect(expected).toContain('final');
      expect(proposed).toBeGreaterThan(0);
      for (const id of five) expect(net.commands(id)).toEqual(expected);
      const applied = five.map((id) => net.node(id).applied.map((e) => `${e.index}:${e.term}`));
      for (const list of applied) expect(list).toEqual(applied[0]);
    }
  });
});

describe('Figure 2: RequestVote receiver', () => {
  // b's log: terms [1, 1, 2]; b is at term 2 and has not voted.
  const voter = () =>
    new LoneNode({
      id: 'b',
      voters: ['a', 'b', 'c'],
      logTerms: [1, 1, 2],
      hardState: { term: 2, vote: null, commit: 0 },
    });

  it('1. reply false if term < currentTerm: a stale candidate gets no vote', () => {
    const b = voter();
    const out = b.step(msg.vote({ from: 'c', to: 'b', term: 1, index: 9, logTerm: 2 }));
    expect(granted(out)).not.toContain(true);
    expect(b.raw.status()).toMatchObject({ term: 2, vote: null });
  });

  it('2. grant if votedFor is null and the candidate is at least as up to date; the vote is durable first', () => {
    const b = voter();
    b.raw.step(msg.vote({ from: 'c', to: 'b', term: 3, index: 3, logTerm: 2 }));
    const ready = b.raw.ready();
    expect(ready.hardState).toMatchObject({ term: 3, vote: 'c' });
    expect(ready.mustSync).toBe(true);
    // the grant may only leave once the vote is on disk
    expect(ready.messages.filter((m) => m.type === 'voteResp')).toEqual([]);
    expect(ready.messagesAfterPersist).toEqual([
      { type: 'voteResp', from: 'b', to: 'c', term: 3, reject: false },
    ]);
    b.raw.advance();
  });

  it('2. votedFor = candidateId: a repeated request is granted again; any other candidate is refused', () => {
    const b = voter();
    expect(granted(b.step(msg.vote({ from: 'c', to: 'b', term: 3, index: 3, logTerm: 2 })))).toEqual([true]);
    expect(granted(b.step(msg.vote({ from: 'a', to: 'b', term: 3, index: 9, logTerm: 3 })))).toEqual([false]);
    expect(granted(b.step(msg.vote({ from: 'c', to: 'b', term: 3, index: 3, logTerm: 2 })))).toEqual([true]);
    expect(b.storage.initialState().hardState).toMatchObject({ term: 3, vote: 'c' });
  });

  it('§5.4.1 election restriction: a candidate with a less up-to-date log is refused', () => {
    const cases: { index: number; logTerm: number; grant: boolean }[] = [
      { index: 10, logTerm: 1, grant: false }, // lower last term, however long
      { index: 2, logTerm: 2, grant: false }, // same last term, shorter
      { index: 3, logTerm: 2, grant: true }, // same last term, same length
      { index: 4, logTerm: 2, grant: true }, // same last term, longer
      { index: 1, logTerm: 3, grant: true }, // higher last term, however short
    ];
    for (const c of cases) {
      const b = voter();
      const out = b.step(msg.vote({ from: 'c', to: 'b', term: 3, index: c.index, logTerm: c.logTerm }));
      expect(granted(out)).toEqual([c.grant]);
      // the higher term is adopted either way
      expect(b.raw.status().term).toBe(3);
    }
  });
});

describe('Figure 2: AppendEntries receiver', () => {
  // b's log: terms [1, 1, 2, 2]; b is at term 3.
  const follower = (config: { preVote?: boolean; checkQuorum?: boolean } = {}) =>
    new LoneNode({
      id: 'b',
      voters: ['a', 'b', 'c'],
      logTerms: [1, 1, 2, 2],
      hardState: { term: 3, vote: null, commit: 1 },
      config,
    });

  it('1. reply false if term < currentTerm: nothing is appended (paper mode: no answer at all)', () => {
    const b = follower();
    const out = b.step(
      msg.app({ from: 'a', to: 'b', term: 2, index: 4, logTerm: 2, entries: entries(5, [2]) }),
    );
    expect(out).toEqual([]);
    expect(b.logTerms()).toEqual([1, 1, 2, 2]);
  });

  it('1. with PreVote/CheckQuorum the stale leader is told the newer term, and steps down', () => {
    const b = follower({ preVote: true, checkQuorum: true });
    const out = b.step(
      msg.app({ from: 'a', to: 'b', term: 2, index: 4, logTerm: 2, entries: entries(5, [2]) }),
    );
    expect(b.logTerms()).toEqual([1, 1, 2, 2]);
    expect(out).toHaveLength(1);
    const answer = out[0];
    expect(answer).toMatchObject({ type: 'appResp', from: 'b', to: 'a', term: 3 });
    // a, a leader of term 2, learns of term 3 from that answer
    const a = new LoneNode({
      id: 'a',
      voters: ['a', 'b', 'c'],
      logTerms: [1, 1, 2, 2],
      hardState: { term: 1, vote: null, commit: 1 },
      config: { preVote: false, checkQuorum: true },
    });
    a.raw.campaign();
    a.flush();
    a.step(msg.voteResp({ from: 'c', to: 'a', term: 2, reject: false }));
    expect(a.raw.status()).toMatchObject({ role: 'leader', term: 2 });
    if (answer !== undefined) a.step(answer);
    expect(a.raw.status()).toMatchObject({ role: 'follower', term: 3 });
  });

  it('2. reply false if the log has no entry at prevLogIndex whose term matches prevLogTerm', () => {
    const b = follower();
    // b holds index 4 with term 2, not term 3
    const mismatch = b.step(
      msg.app({ from: 'a', to: 'b', term: 3, index: 4, logTerm: 3, entries: entries(5, [3]) }),
    );
    expect(mismatch).toEqual([
      { type: 'appResp', from: 'b', to: 'a', term: 3, index: 4, reject: true, hintIndex: 4, hintTerm: 2 },
    ]);
    // b holds nothing at index 7
    const missing = b.step(msg.app({ from: 'a', to: 'b', term: 3, index: 7, logTerm: 3, entries: [] }));
    expect(missing[0]).toMatchObject({ reject: true, index: 7, hintIndex: 4, hintTerm: 2 });
    expect(b.logTerms()).toEqual([1, 1, 2, 2]);
  });

  it('3. an existing entry that conflicts with a new one is deleted with all that follow it', () => {
    const b = follower();
    const out = b.step(
      msg.app({ from: 'a', to: 'b', term: 3, index: 2, logTerm: 1, entries: entries(3, [3]) }),
    );
    expect(out[0]).toMatchObject({ reject: false, index: 3 });
    expect(b.logTerms()).toEqual([1, 1, 3]);
  });

  it('4. new entries not already in the log are appended; entries already held are kept', () => {
    const b = follower();
    b.step(msg.app({ from: 'a', to: 'b', term: 3, index: 2, logTerm: 1, entries: entries(3, [2, 2, 3, 3]) }));
    expect(b.logTerms()).toEqual([1, 1, 2, 2, 3, 3]);
    // a stale, shorter copy of the same entries truncates nothing
    b.step(msg.app({ from: 'a', to: 'b', term: 3, index: 2, logTerm: 1, entries: entries(3, [2]) }));
    expect(b.logTerms()).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('5. if leaderCommit > commitIndex, commitIndex = min(leaderCommit, index of last new entry)', () => {
    const b = follower();
    b.step(
      msg.app({ from: 'a', to: 'b', term: 3, index: 2, logTerm: 1, entries: entries(3, [2]), commit: 4 }),
    );
    // b holds index 4 too, but this message only vouches for up to index 3
    expect(b.raw.status().commit).toBe(3);
    b.step(
      msg.app({ from: 'a', to: 'b', term: 3, index: 3, logTerm: 2, entries: entries(4, [2, 3]), commit: 4 }),
    );
    expect(b.raw.status().commit).toBe(4);
    b.step(msg.app({ from: 'a', to: 'b', term: 3, index: 5, logTerm: 3, entries: [], commit: 100 }));
    expect(b.raw.status().commit).toBe(5);
  });
});

describe('§5.2 leader election', () => {
  it('a candidate that hears AppendEntries from a leader of its term steps down to follower', () => {
    const a = new LoneNode({ id: 'a', voters: ['a', 'b', 'c'] });
    a.raw.campaign();
    a.flush();
    expect(a.raw.status()).toMatchObject({ role: 'candidate', term: 1 });
    a.step(msg.app({ from: 'b', to: 'a', term: 1, index: 0, logTerm: 0 }));
    expect(a.raw.status()).toMatchObject({ role: 'follower', term: 1, leaderId: 'b' });
  });

  it('a candidate that hears from a leader of a higher term steps down and adopts the term', () => {
    const a = new LoneNode({ id: 'a', voters: ['a', 'b', 'c'] });
    a.raw.campaign();
    a.flush();
    a.step(msg.heartbeat({ from: 'c', to: 'a', term: 4 }));
    expect(a.raw.status()).toMatchObject({ role: 'follower', term: 4, leaderId: 'c' });
  });

  it('a candidate that hears AppendEntries from an older term stays a candidate', () => {
    const a = new LoneNode({
      id: 'a',
      voters: ['a', 'b', 'c'],
      hardState: { term: 3, vote: null, commit: 0 },
    });
    a.raw.campaign();
    a.flush();
    expect(a.raw.status()).toMatchObject({ role: 'candidate', term: 4 });
    a.step(msg.app({ from: 'b', to: 'a', term: 3, index: 0, logTerm: 0 }));
    expect(a.raw.status()).toMatchObject({ role: 'candidate', term: 4, leaderId: null });
  });

  it('randomized election timeouts elect a single leader quickly', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const net = new TestNetwork({ voters: five, seed });
      const ticks = net.tickUntil(() => net.leaders().length === 1, 100);
      // within two election timeouts (the timeout is drawn from [10, 20))
      expect(ticks).toBeLessThanOrEqual(21);
      const leader = net.leaders()[0] ?? '';
      expect(net.raw(leader).status().term).toBeLessThanOrEqual(2);
      net.tickAll(50);
      // and it stays the only leader
      expect(net.leaders()).toEqual([leader]);
    }
  });

  it('without randomization, simultaneous candidates split the vote forever', () => {
    const constant: Prng = { nextUint32: () => 0, nextInt: () => 0, nextFloat: () => 0 };
    const net = new TestNetwork({ voters: ['a', 'b', 'c'], prngFor: () => constant });
    net.tickAll(200);
    expect(net.leaders()).toEqual([]);
    // every timeout starts a new, again split, election
    expect(net.raw('a').status().term).toBeGreaterThan(5);
  });
});

describe('§5.4.2 Figure 8: a leader commits entries of earlier terms only through one of its own', () => {
  // Paper mode, so the transcript follows the figure; one entry per AppendEntries so that
  // an old entry can be replicated without the new leader's no-op.
  const node = { preVote: false, checkQuorum: false, messageEntriesMax: 1 };

  /** Steps (a)-(c): S1 leads term 3 and has put its term-1 entry at index 2 on a majority. */
  function figure8c(): TestNetwork {
    const net = new TestNetwork({ voters: five, node });
    net.elect('s1'); // term 1; its no-op at index 1 commits everywhere
    // (a) S1 replicates index 2 (term 1) to S2 only, then crashes.
    net.cutLink({ from: 's1', to: 's3' });
    net.cutLink({ from: 's1', to: 's4' });
    net.cutLink({ from: 's1', to: 's5' });
    expect(net.propose('s1', 'X')).toMatchObject({ ok: true, index: 2, term: 1 });
    net.isolate('s1');
    // (b) S5 is elected for term 2 by S3, S4 and itself (S2 refuses: its log is longer),
    //     appends its no-op at index 2, and crashes before sending it anywhere.
    net.filter = (m) => !(m.from === 's5' && m.type === 'app');
    net.elect('s5');
    expect(net.raw('s5').status().term).toBe(2);
    net.isolate('s5');
    net.restart('s5');
    net.filter = null;
    // (c) S1 restarts and is elected for term 3 by S2 and S3 (a first attempt at term 2
    //     fails: S3 voted for S5 in term 2). It sends index 2 to S3, but its no-op at index 3
    //     reaches nobody: every AppendEntries loses the entries from index 3 on.
    net.restart('s1');
    net.heal();
    net.isolate('s5');
    net.cutLink({ from: 's1', to: 's4' });
    net.rewrite = (m) => (m.type === 'app' ? { ...m, entries: m.entries.filter((e) => e.index < 3) } : m);
    campaignUntilLeader(net, 's1');
    expect(net.raw('s1').status().term).toBe(3);
    return net;
  }

  it('(c) an entry of an earlier term stored on a majority is not committed by counting replicas', () => {
    const net = figure8c();
    const status = net.raw('s1').status();
    expect(persistedLog(net, 's2').map((e) => e.term)).toEqual([1, 1]);
    expect(persistedLog(net, 's3').map((e) => e.term)).toEqual([1, 1]);
    expect(status.progress?.get('s2')?.match).toBe(2);
    expect(status.progress?.get('s3')?.match).toBe(2);
    // S1, S2 and S3 hold index 2: a majority. Still it is not committed.
    expect(status.commit).toBe(1);
    for (const id of five) expect(net.raw(id).status().commit).toBe(1);
  });

  it('(d) ...because S5 may still be elected and overwrite it', () => {
    const net = figure8c();
    // S1 crashes; S5 comes back and is elected by S2, S3 and S4 (its last term, 2, beats their 1).
    net.rewrite = null;
    net.heal();
    net.isolate('s1');
    net.restart('s1');
    campaignUntilLeader(net, 's5');
    expect(net.raw('s5').status().term).toBe(4);
    net.tickAll(2);
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(persistedLog(net, id).map((e) => e.term)).toEqual([1, 2, 4]);
      expect(net.raw(id).status().commit).toBe(3);
    }
    // When S1 returns, its uncommitted entries are replaced as well; X was never applied anywhere.
    net.heal();
    net.tickAll(3);
    expect(persistedLog(net, 's1').map((e) => e.term)).toEqual([1, 2, 4]);
    for (const id of five) expect(net.commands(id)).toEqual([]);
  });

  it('(e) once an entry of the current term commits, the earlier entries commit with it', () => {
    const net = figure8c();
    // S1 now replicates its term-3 no-op to S2 and S3: indexes 2 and 3 commit together.
    net.rewrite = null;
    net.tickAll(1);
    expect(net.raw('s1').status().commit).toBe(3);
    // S5 can no longer win: a majority holds an entry of term 3, newer than its last.
    net.heal();
    net.isolate('s1');
    for (let i = 0; i < 3; i++) net.campaign('s5');
    expect(net.raw('s5').status().role).not.toBe('leader');
    net.heal();
    net.tickAll(60);
    for (const id of five) expect(net.commands(id)).toEqual(['X']);
  });
});
