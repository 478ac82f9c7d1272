import { describe, expect, it } from 'vitest';
import { RaftInvariantError } from '../errors.js';
import { entrySizeBytes } from '../size.js';
import { MemoryStorage } from '../storage.js';
import { entries, entry, indexes } from '../testing/entries.js';
import { RaftLog } from './raft-log.js';

/** A log whose storage holds `stored` (from index 1) and whose unstable tail holds `unstable`. */
function makeLog(options: {
  stored?: number[];
  unstable?: number[];
  committed?: number;
  dataBytes?: number;
}) {
  const storage = MemoryStorage.bootstrap({ voters: ['a'] });
  const stored = options.stored ?? [];
  storage.append(entries(1, stored, options.dataBytes));
  const log = new RaftLog(storage, { committed: 0, applied: 0 });
  log.append(entries(stored.length + 1, options.unstable ?? [], options.dataBytes));
  if (options.committed !== undefined) log.commitTo(options.committed);
  return { log, storage };
}

describe('RaftLog basics', () => {
  it('spans storage and the unstable tail', () => {
    const { log } = makeLog({ stored: [1, 1, 2], unstable: [3, 3] });
    expect(log.firstIndex()).toBe(1);
    expect(log.lastIndex()).toBe(5);
    expect(log.lastTerm()).toBe(3);
    expect(log.lastStableIndex()).toBe(3);
    expect(log.term(0)).toBe(0);
    expect(log.term(3)).toBe(2);
    expect(log.term(4)).toBe(3);
    expect(log.term(6)).toBeNull();
  });

  it('refuses a hard state commit past the last index', () => {
    const storage = MemoryStorage.bootstrap({ voters: ['a'] });
    storage.append(entries(1, [1]));
    storage.setHardState({ term: 1, vote: null, commit: 2 });
    expect(() => new RaftLog(storage, { committed: 2, applied: 0 })).toThrow(RaftInvariantError);
  });

  it('refuses an applied index past commit', () => {
    const storage = MemoryStorage.bootstrap({ voters: ['a'] });
    storage.append(entries(1, [1, 1]));
    expect(() => new RaftLog(storage, { committed: 1, applied: 2 })).toThrow(RaftInvariantError);
  });

  it('isUpToDate: higher last term wins, then longer log (§5.4.1)', () => {
    const { log } = makeLog({ stored: [1, 2, 2] });
    expect(log.isUpToDate({ lastIndex: 1, lastTerm: 3 })).toBe(true);
    expect(log.isUpToDate({ lastIndex: 3, lastTerm: 2 })).toBe(true);
    expect(log.isUpToDate({ lastIndex: 4, lastTerm: 2 })).toBe(true);
    expect(log.isUpToDate({ lastIndex: 2, lastTerm: 2 })).toBe(false);
    expect(log.isUpToDate({ lastIndex: 10, lastTerm: 1 })).toBe(false);
  });

  it('commitTo never moves commit back and never past the last index', () => {
    const { log } = makeLog({ stored: [1, 1, 1] });
    log.commitTo(2);
    log.commitTo(1);
    expect(log.committed).toBe(2);
    expect(() => log.commitTo(4)).toThrow(RaftInvariantError);
  });

  it('a leader append may not overwrite committed entries', () => {
    const { log } = makeLog({ stored: [1, 1, 1], committed: 2 });
    expect(() => log.append(entries(2, [2]))).toThrow(RaftInvariantError);
    expect(log.append(entries(3, [2]))).toBe(3);
    expect(log.term(3)).toBe(2);
  });
});

describe('RaftLog.maybeAppend (the AppendEntries receiver)', () => {
  it('returns null when the log does not hold (index, logTerm)', () => {
    const { log } = makeLog({ stored: [1, 1, 2] });
    expect(log.maybeAppend({ index: 3, logTerm: 1, commit: 0, entries: entries(4, [3]) })).toBeNull();
    expect(log.maybeAppend({ index: 4, logTerm: 2, commit: 0, entries: [] })).toBeNull();
    expect(log.lastIndex()).toBe(3);
  });

  it('appends new entries and returns the index of the last new entry', () => {
    const { log } = makeLog({ stored: [1, 1] });
    expect(log.maybeAppend({ index: 2, logTerm: 1, commit: 0, entries: entries(3, [2, 2]) })).toBe(4);
    expect(log.lastIndex()).toBe(4);
  });

  it('deletes a conflicting entry and all that follow it', () => {
    const { log } = makeLog({ stored: [1, 1, 1, 1, 1] });
    expect(log.maybeAppend({ index: 2, logTerm: 1, commit: 0, entries: entries(3, [2]) })).toBe(3);
    expect(log.lastIndex()).toBe(3);
    expect(log.term(3)).toBe(2);
  });

  it('keeps entries that follow when a stale message carries only entries we hold', () => {
    const { log } = makeLog({ stored: [1, 1, 1, 1, 1] });
    expect(log.maybeAppend({ index: 1, logTerm: 1, commit: 0, entries: entries(2, [1, 1]) })).toBe(3);
    expect(log.lastIndex()).toBe(5);
  });

  it('never truncates committed entries: that is an invariant violation', () => {
    const { log } = makeLog({ stored: [1, 1, 1], committed: 3 });
    expect(() => log.maybeAppend({ index: 1, logTerm: 1, commit: 3, entries: entries(2, [2]) })).toThrow(
      RaftInvariantError,
    );
  });

  it('sets commit to min(leaderCommit, index of last new entry)', () => {
    const { log } = makeLog({ stored: [1, 1, 1, 1, 1] });
    // the follower holds 5 entries but the message only vouches for up to 3
    log.maybeAppend({ index: 2, logTerm: 1, commit: 10, entries: entries(3, [1]) });
    expect(log.committed).toBe(3);
    log.maybeAppend({ index: 3, logTerm: 1, commit: 4, entries: entries(4, [1, 1]) });
    expect(log.committed).toBe(4);
    // a lower leader commit never moves commit back
    log.maybeAppend({ index: 5, logTerm: 1, commit: 2, entries: [] });
    expect(log.committed).toBe(4);
  });
});

describe('RaftLog.findConflictByTerm', () => {
  // index: 1 2 3 4 5 6 7
  // term:  1 1 2 2 2 4 4
  const { log } = makeLog({ stored: [1, 1, 2, 2, 2, 4, 4] });

  it('returns the largest index at or below `index` whose term is at most `term`', () => {
    expect(log.findConflictByTerm({ index: 7, term: 3 })).toEqual({ index: 5, term: 2 });
    expect(log.findConflictByTerm({ index: 7, term: 4 })).toEqual({ index: 7, term: 4 });
    expect(log.findConflictByTerm({ index: 7, term: 1 })).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm({ index: 4, term: 5 })).toEqual({ index: 4, term: 2 });
  });

  it('clamps an index past the end to the last index', () => {
    expect(log.findConflictByTerm({ index: 100, term: 3 })).toEqual({ index: 5, term: 2 });
  });

  it('reaches index 0 (term 0) when every entry is newer', () => {
    expect(log.findConflictByTerm({ index: 7, term: 0 })).toEqual({ index: 0, term: 0 });
  });

  it('answers term 0 below a compacted prefix', () => {
    const storage = MemoryStorage.bootstrap({ voters: ['a'] });
    storage.append(entries(1, [1, 1, 2, 2]));
    storage.createSnapshot({
      metadata: { index: 3, term: 2, confState: { voters: ['a'], learners: [] } },
      data: new Uint8Array(0),
    });
    storage.compact(3);
    const compacted = new RaftLog(storage, { committed: 3, applied: 3 });
    expect(compacted.findConflictByTerm({ index: 4, term: 1 })).toEqual({ index: 2, term: 0 });
  });
});

describe('RaftLog.slice', () => {
  const size = entrySizeBytes(entry(1, 1, 10));

  it('reads across the storage/unstable boundary', () => {
    const { log } = makeLog({ stored: [1, 1, 1], unstable: [2, 2], dataBytes: 10 });
    expect(indexes(log.slice({ lo: 2, hi: 6, bytesMax: 1e9 }) ?? [])).toEqual([2, 3, 4, 5]);
    expect(indexes(log.slice({ lo: 4, hi: 6, bytesMax: 1e9 }) ?? [])).toEqual([4, 5]);
    expect(log.slice({ lo: 4, hi: 4, bytesMax: 1e9 })).toEqual([]);
  });

  it('stops at the byte limit inside storage without touching the tail', () => {
    const { log } = makeLog({ stored: [1, 1, 1], unstable: [2, 2], dataBytes: 10 });
    expect(indexes(log.slice({ lo: 1, hi: 6, bytesMax: 2 * size }) ?? [])).toEqual([1, 2]);
  });

  it('stops at the byte limit inside the tail', () => {
    const { log } = makeLog({ stored: [1, 1, 1], unstable: [2, 2], dataBytes: 10 });
    expect(indexes(log.slice({ lo: 2, hi: 6, bytesMax: 3 * size }) ?? [])).toEqual([2, 3, 4]);
    expect(indexes(log.slice({ lo: 3, hi: 6, bytesMax: 2 * size + 1 }) ?? [])).toEqual([3, 4]);
  });

  it('always returns at least one entry, however small the limit', () => {
    const { log } = makeLog({ stored: [1], unstable: [2], dataBytes: 10 });
    expect(indexes(log.slice({ lo: 1, hi: 3, bytesMax: 1 }) ?? [])).toEqual([1]);
    expect(indexes(log.slice({ lo: 2, hi: 3, bytesMax: 1 }) ?? [])).toEqual([2]);
  });

  it('returns null below the first index and asserts past the last', () => {
    const storage = MemoryStorage.bootstrap({ voters: ['a'] });
    storage.append(entries(1, [1, 1, 1, 1]));
    storage.createSnapshot({
      metadata: { index: 2, term: 1, confState: { voters: ['a'], learners: [] } },
      data: new Uint8Array(0),
    });
    storage.compact(2);
    const log = new RaftLog(storage, { committed: 2, applied: 2 });
    expect(log.slice({ lo: 2, hi: 4, bytesMax: 1e9 })).toBeNull();
    expect(log.entriesFrom({ lo: 1, bytesMax: 1e9, countMax: 10 })).toBeNull();
    expect(indexes(log.slice({ lo: 3, hi: 5, bytesMax: 1e9 }) ?? [])).toEqual([3, 4]);
    expect(() => log.slice({ lo: 3, hi: 6, bytesMax: 1e9 })).toThrow(RaftInvariantError);
  });

  it('entriesFrom applies the count limit and returns [] past the end', () => {
    const { log } = makeLog({ stored: [1, 1, 1], unstable: [2, 2] });
    expect(indexes(log.entriesFrom({ lo: 2, bytesMax: 1e9, countMax: 2 }) ?? [])).toEqual([2, 3]);
    expect(log.entriesFrom({ lo: 6, bytesMax: 1e9, countMax: 2 })).toEqual([]);
  });
});

describe('RaftLog apply bookkeeping', () => {
  it('hands out committed entries within a byte budget, then records them applied', () => {
    const { log } = makeLog({ stored: [1, 1, 1, 1], committed: 3, dataBytes: 10 });
    expect(log.hasNextCommittedEntries()).toBe(true);
    const first = log.nextCommittedEntries(1);
    expect(indexes(first)).toEqual([1]);
    log.acceptApplying(1);
    expect(indexes(log.nextCommittedEntries(1e9))).toEqual([2, 3]);
    log.acceptApplying(3);
    expect(log.hasNextCommittedEntries()).toBe(false);
    expect(log.nextCommittedEntries(1e9)).toEqual([]);
    log.appliedTo(3);
    expect(log.applied).toBe(3);
  });

  it('asserts applying and applied only move forward and stay within bounds', () => {
    const { log } = makeLog({ stored: [1, 1, 1], committed: 2 });
    expect(() => log.acceptApplying(3)).toThrow(RaftInvariantError);
    log.acceptApplying(2);
    expect(() => log.acceptApplying(1)).toThrow(RaftInvariantError);
    log.appliedTo(2);
    expect(() => log.appliedTo(1)).toThrow(RaftInvariantError);
  });
});

describe('RaftLog.restore', () => {
  const snapshot = (index: number, term: number) => ({
    metadata: { index, term, confState: { voters: ['a'], learners: [] } },
    data: new Uint8Array([9]),
  });

  it('replaces the log with the snapshot and commits up to it', () => {
    const { log } = makeLog({ stored: [1, 1], unstable: [2], committed: 1 });
    log.restore(snapshot(10, 4));
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(10);
    expect(log.lastTerm()).toBe(4);
    expect(log.committed).toBe(10);
    expect(log.applying).toBe(10);
    // not yet durable: nothing counts as stable
    expect(log.lastStableIndex()).toBe(0);
    expect(log.snapshot().metadata.index).toBe(10);
    expect(log.slice({ lo: 5, hi: 6, bytesMax: 1e9 })).toBeNull();
    log.unstable.stableSnapshotTo(10);
    expect(log.unstable.snapshot).toBeNull();
  });

  it('refuses a snapshot at or below commit', () => {
    const { log } = makeLog({ stored: [1, 1, 1], committed: 3 });
    expect(() => log.restore(snapshot(3, 1))).toThrow(RaftInvariantError);
  });
});
