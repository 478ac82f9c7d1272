import type { Entry, HardState, Snapshot } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { type LogView, SafetyCheck, SafetyCheckers, SafetyViolation } from './checkers.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const entry = (index: number, term: number, text = `e${index}t${term}`): Entry => ({
  index,
  term,
  type: 0,
  data: bytes(text),
});

/** A log view over a plain list of terms: terms[i] is the term at index i + 1. */
function log(terms: readonly number[], firstIndex = 1): LogView {
  return {
    firstIndex: () => firstIndex,
    lastIndex: () => terms.length,
    term: (index) => (index === 0 ? 0 : index >= firstIndex - 1 ? (terms[index - 1] ?? null) : null),
  };
}

function checkers(): SafetyCheckers {
  return new SafetyCheckers({ seed: 99, nowMs: () => 1234 });
}

function violation(run: () => void): SafetyViolation {
  try {
    run();
  } catch (error) {
    if (error instanceof SafetyViolation) return error;
    throw error;
  }
  throw new Error('expected a SafetyViolation');
}

const hs = (term: number, commit: number): HardState => ({ term, vote: null, commit });

describe('SafetyCheckers', () => {
  it('reports two leaders in one term with the seed and the virtual time', () => {
    const c = checkers();
    c.onBecomeLeader({ node: 0, term: 2, log: log([]) });
    c.onBecomeLeader({ node: 0, term: 2, log: log([]) });
    c.onBecomeLeader({ node: 1, term: 3, log: log([]) });
    const v = violation(() => c.onBecomeLeader({ node: 2, term: 2, log: log([]) }));
    expect(v.check).toBe(SafetyCheck.ElectionSafety);
    expect(v.seed).toBe(99);
    expect(v.timeMs).toBe(1234);
    expect(v.message).toContain('n0 and n2');
  });

  it('reports two nodes applying different entries at one index', () => {
    const c = checkers();
    for (const node of [0, 1]) c.onStart({ node, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onApply({ node: 0, entry: entry(1, 1) });
    c.onApply({ node: 1, entry: entry(1, 1) });
    c.onApply({ node: 0, entry: entry(2, 1, 'x') });
    expect(violation(() => c.onApply({ node: 1, entry: entry(2, 1, 'y') })).check).toBe(
      SafetyCheck.StateMachineSafety,
    );
  });

  it('reports entries applied out of order', () => {
    const c = checkers();
    c.onStart({ node: 0, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onApply({ node: 0, entry: entry(1, 1) });
    expect(violation(() => c.onApply({ node: 0, entry: entry(3, 1) })).check).toBe(SafetyCheck.ApplyOrder);
  });

  it('reports log matching violations: same index and term, different entry or prefix', () => {
    const c = checkers();
    c.onDurable({ node: 0, records: [{ kind: 'entry', entry: entry(1, 1) }], log: log([1]) });
    c.onDurable({ node: 0, records: [{ kind: 'entry', entry: entry(2, 2) }], log: log([1, 2]) });
    c.onDurable({ node: 1, records: [{ kind: 'entry', entry: entry(2, 2) }], log: log([1, 2]) });
    // Same (2, 2) but preceded by term 3: the prefixes differ.
    const v = violation(() =>
      c.onDurable({ node: 2, records: [{ kind: 'entry', entry: entry(2, 2) }], log: log([3, 2]) }),
    );
    expect(v.check).toBe(SafetyCheck.LogMatching);
    expect(
      violation(() =>
        c.onDurable({ node: 2, records: [{ kind: 'entry', entry: entry(1, 1, 'other') }], log: log([1]) }),
      ).check,
    ).toBe(SafetyCheck.LogMatching);
  });

  it('reports a commit index going backwards in memory and on disk', () => {
    const c = checkers();
    c.onStart({ node: 0, hardState: hs(1, 5), snapshotIndex: 0 });
    c.onHardState({ node: 0, hardState: hs(1, 7) });
    expect(violation(() => c.onHardState({ node: 0, hardState: hs(1, 6) })).check).toBe(
      SafetyCheck.CommitMonotonic,
    );
    const d = checkers();
    d.onStart({ node: 0, hardState: hs(1, 5), snapshotIndex: 0 });
    d.onDurable({ node: 0, records: [{ kind: 'hardState', hardState: hs(2, 8) }], log: log([]) });
    expect(
      violation(() =>
        d.onDurable({ node: 0, records: [{ kind: 'hardState', hardState: hs(2, 7) }], log: log([]) }),
      ).check,
    ).toBe(SafetyCheck.CommitMonotonic);
  });

  it("starts a wiped node's own history afresh, and keeps what every other check knows", () => {
    const c = checkers();
    c.onStart({ node: 0, hardState: hs(3, 5), snapshotIndex: 0 });
    for (let i = 1; i <= 5; i++) c.onApply({ node: 0, entry: entry(i, 1) });
    // Without a wipe, a node coming back at term 0 lost its durable state: a violation.
    expect(violation(() => c.onStart({ node: 0, hardState: hs(0, 0), snapshotIndex: 0 })).check).toBe(
      SafetyCheck.CommitMonotonic,
    );
    c.onWipe({ node: 0 });
    c.onStart({ node: 0, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onRestore({
      node: 0,
      snapshot: { metadata: { index: 3, term: 1, confState: { voters: [], learners: [] } }, data: bytes('') },
    });
    c.onApply({ node: 0, entry: entry(4, 1) });
    // What it applied before the wipe still binds it and everyone else.
    expect(violation(() => c.onApply({ node: 0, entry: entry(5, 2) })).check).toBe(
      SafetyCheck.StateMachineSafety,
    );
  });

  it('reports a leader missing an entry committed in an earlier term, not one committed later', () => {
    const c = checkers();
    c.onLeaderCommit({ node: 0, term: 2, commit: 3, log: log([1, 2, 2]) });
    // A leader of term 2 elected late (by delayed votes) need not hold entries committed in term 2.
    c.onBecomeLeader({ node: 0, term: 2, log: log([1, 2, 2]) });
    const v = violation(() => c.onBecomeLeader({ node: 1, term: 3, log: log([1, 2]) }));
    expect(v.check).toBe(SafetyCheck.LeaderCompleteness);
    // Entries compacted into the leader's snapshot are not required in its log.
    c.onBecomeLeader({ node: 2, term: 4, log: log([1, 2, 2, 4], 4) });
  });

  it('reports an acknowledged write replaced at its index', () => {
    const c = checkers();
    c.onStart({ node: 0, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onStart({ node: 1, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onApply({ node: 0, entry: entry(1, 1, 'acked') });
    c.onAck({ entry: entry(1, 1, 'acked') });
    expect(violation(() => c.onAck({ entry: entry(1, 1, 'other') })).check).toBe(SafetyCheck.AckedWriteLost);
    const view = { node: 1, appliedEntry: (index: number) => (index === 1 ? entry(1, 2, 'x') : undefined) };
    expect(violation(() => c.checkAll({ nodes: [view], leaders: [] })).check).toBe(
      SafetyCheck.AckedWriteLost,
    );
    expect(
      violation(() => c.checkAll({ nodes: [], leaders: [{ node: 1, term: 3, log: log([2]) }] })).check,
    ).toBe(SafetyCheck.AckedWriteLost);
    c.checkAll({ nodes: [], leaders: [{ node: 1, term: 3, log: log([1]) }] });
  });

  it('reports a snapshot whose term disagrees with what was applied at its index', () => {
    const c = checkers();
    c.onStart({ node: 0, hardState: hs(0, 0), snapshotIndex: 0 });
    c.onApply({ node: 0, entry: entry(1, 1) });
    const snapshot: Snapshot = {
      metadata: { index: 1, term: 2, confState: { voters: [], learners: [] } },
      data: new Uint8Array(0),
    };
    expect(violation(() => c.onRestore({ node: 1, snapshot })).check).toBe(SafetyCheck.StateMachineSafety);
  });

  it('reports replicas that applied the same prefix but hold different states', () => {
    const c = checkers();
    c.checkReplicaStates([
      { node: 0, appliedIndex: 5, state: bytes('a') },
      { node: 1, appliedIndex: 4, state: bytes('b') },
      { node: 2, appliedIndex: 5, state: bytes('a') },
    ]);
    const v = violation(() =>
      c.checkReplicaStates([
        { node: 0, appliedIndex: 5, state: bytes('a') },
        { node: 1, appliedIndex: 5, state: bytes('b') },
      ]),
    );
    expect(v.check).toBe(SafetyCheck.StateMachineSafety);
  });
});
