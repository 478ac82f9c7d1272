import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../errors.js';
import type { Snapshot } from '../types.js';
import { Progress } from './progress.js';

const progress = (next = 5, inflightMessagesMax = 3) =>
  new Progress({ next, inflightMessagesMax, isLearner: false });

const snapshot: Snapshot = {
  metadata: { index: 20, term: 2, confState: { voters: ['a'], learners: [] } },
  data: new Uint8Array([1, 2, 3]),
};

describe('Progress state transitions', () => {
  it('starts in probe with match 0', () => {
    const pr = progress();
    expect(pr.state).toBe('probe');
    expect(pr.match).toBe(0);
    expect(pr.next).toBe(5);
    expect(pr.isPaused()).toBe(false);
  });

  it('probe sends one AppendEntries at a time', () => {
    const pr = progress();
    pr.sentEntries({ entryCount: 2, lastIndex: 6 });
    expect(pr.isPaused()).toBe(true);
    // next does not move in probe: the follower may reject
    expect(pr.next).toBe(5);
    expect(pr.maybeUpdate(6)).toBe(true);
    expect(pr.isPaused()).toBe(false);
    expect(pr.next).toBe(7);
  });

  it('probe -> replicate sets next to match + 1 and pipelines up to the window', () => {
    const pr = progress(5, 2);
    pr.maybeUpdate(4);
    pr.becomeReplicate();
    expect(pr.state).toBe('replicate');
    expect(pr.next).toBe(5);
    pr.sentEntries({ entryCount: 2, lastIndex: 6 });
    expect(pr.next).toBe(7);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries({ entryCount: 1, lastIndex: 7 });
    expect(pr.isPaused()).toBe(true);
    // an empty append is not tracked
    pr.inflights.freeLE(6);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries({ entryCount: 0, lastIndex: 7 });
    expect(pr.inflights.size).toBe(1);
  });

  it('replicate refuses to send entries behind next', () => {
    const pr = progress();
    pr.becomeReplicate();
    expect(() => pr.sentEntries({ entryCount: 1, lastIndex: 0 })).toThrow(RaftInvariantError);
  });

  it('replicate -> probe resets next to match + 1 and empties the window', () => {
    const pr = progress(1);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    pr.sentEntries({ entryCount: 3, lastIndex: 6 });
    pr.becomeProbe();
    expect(pr.state).toBe('probe');
    expect(pr.next).toBe(4);
    expect(pr.inflights.size).toBe(0);
    expect(pr.isPaused()).toBe(false);
  });

  it('snapshot state is always paused and remembers the snapshot; probe forgets it', () => {
    const pr = progress();
    pr.becomeSnapshot(snapshot);
    expect(pr.state).toBe('snapshot');
    expect(pr.snapshot).toBe(snapshot);
    expect(pr.snapshotOffset).toBe(0);
    expect(pr.isPaused()).toBe(true);
    expect(() => pr.sentEntries({ entryCount: 0, lastIndex: 0 })).toThrow(RaftInvariantError);
    pr.snapshotOffset = 2;
    pr.maybeUpdate(20);
    pr.becomeProbe();
    expect(pr.snapshot).toBeNull();
    expect(pr.snapshotOffset).toBe(0);
    expect(pr.next).toBe(21);
  });

  it('maybeUpdate never lowers match and reports only news', () => {
    const pr = progress(1);
    expect(pr.maybeUpdate(5)).toBe(true);
    expect(pr.maybeUpdate(3)).toBe(false);
    expect(pr.match).toBe(5);
    expect(pr.next).toBe(6);
    expect(pr.maybeUpdate(5)).toBe(false);
  });
});

describe('Progress.maybeDecrTo', () => {
  it('in probe, moves next back to the hint, never below match + 1', () => {
    const pr = progress(11);
    pr.maybeUpdate(3);
    pr.next = 11;
    expect(pr.maybeDecrTo(10, 6)).toBe(true);
    expect(pr.next).toBe(7);
    pr.sentEntries({ entryCount: 0, lastIndex: 6 });
    expect(pr.maybeDecrTo(6, 0)).toBe(true);
    expect(pr.next).toBe(4);
    expect(pr.isPaused()).toBe(false);
  });

  it('in probe, never moves next forward from a hint past the rejected index', () => {
    const pr = progress(11);
    expect(pr.maybeDecrTo(10, 50)).toBe(true);
    expect(pr.next).toBe(10);
  });

  it('in probe, ignores a stale reject for another index', () => {
    const pr = progress(11);
    pr.sentEntries({ entryCount: 0, lastIndex: 10 });
    expect(pr.maybeDecrTo(8, 2)).toBe(false);
    expect(pr.next).toBe(11);
    expect(pr.isPaused()).toBe(true);
  });

  it('in replicate, ignores a reject at or below match', () => {
    const pr = progress(1);
    pr.maybeUpdate(8);
    pr.becomeReplicate();
    pr.sentEntries({ entryCount: 2, lastIndex: 10 });
    expect(pr.maybeDecrTo(8, 0)).toBe(false);
    expect(pr.maybeDecrTo(5, 0)).toBe(false);
    expect(pr.next).toBe(11);
  });

  it('in replicate, a fresh reject sends next back to match + 1', () => {
    const pr = progress(1);
    pr.maybeUpdate(8);
    pr.becomeReplicate();
    pr.sentEntries({ entryCount: 2, lastIndex: 10 });
    expect(pr.maybeDecrTo(9, 0)).toBe(true);
    expect(pr.next).toBe(9);
  });
});
