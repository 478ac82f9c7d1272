import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  benchKey,
  benchValue,
  dataSet,
  groupCountMismatches,
  latencySummary,
  leadershipChanges,
  parseGroupContact,
  parseProcStatus,
  parseSelf,
  type SelfView,
  sampleIndexes,
} from './snapshot-bench-data.js';
import { groupKeysOf } from './snapshot-bench-phases.js';

describe('the data set', () => {
  it('holds size / value keys, and refuses sizes out of range before anything starts', () => {
    expect(dataSet({ sizeMb: 1024, valueKb: 64, seed: 's' })).toEqual({
      keyCount: 16_384,
      valueBytes: 65_536,
      seed: 's',
    });
    expect(dataSet({ sizeMb: 1, valueKb: 3, seed: 's' }).keyCount).toBe(341);
    expect(() => dataSet({ sizeMb: 0, valueKb: 64, seed: 's' })).toThrow(/--size-mb/);
    expect(() => dataSet({ sizeMb: 1.5, valueKb: 64, seed: 's' })).toThrow(/--size-mb/);
    expect(() => dataSet({ sizeMb: 64, valueKb: 1024, seed: 's' })).toThrow(/--value-kb/);
    expect(() => dataSet({ sizeMb: 64, valueKb: Number.NaN, seed: 's' })).toThrow(/--value-kb/);
  });

  it('derives each value from the seed and the index alone, so a restore can be checked without a copy', () => {
    const set = dataSet({ sizeMb: 1, valueKb: 4, seed: 'seed-a' });
    const value = benchValue(set, 7);
    expect(value.length).toBe(4096);
    expect(/^[0-9a-f]+$/.test(value.toString('latin1'))).toBe(true);
    expect(benchValue(set, 7).equals(value)).toBe(true);
    expect(benchValue(set, 8).equals(value)).toBe(false);
    expect(benchValue({ ...set, seed: 'seed-b' }, 7).equals(value)).toBe(false);
  });

  it('makes values that gzip to about half, like real configuration', () => {
    const set = dataSet({ sizeMb: 1, valueKb: 64, seed: 'ratio' });
    const value = benchValue(set, 0);
    const ratio = gzipSync(value).length / value.length;
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(0.6);
  });

  it('names keys so that they sort in load order under one prefix', () => {
    expect(benchKey(42)).toBe('snapbench/00000042');
    expect([benchKey(10), benchKey(9)].sort()).toEqual([benchKey(9), benchKey(10)]);
  });
});

describe('sampleIndexes', () => {
  it('picks distinct indexes in range, the same ones for the same seed', () => {
    const sample = sampleIndexes({ keyCount: 10_000, count: 500, seed: 'x' });
    expect(sample.length).toBe(500);
    expect(new Set(sample).size).toBe(500);
    expect(sample.every((i) => Number.isInteger(i) && i >= 0 && i < 10_000)).toBe(true);
    expect(sampleIndexes({ keyCount: 10_000, count: 500, seed: 'x' })).toEqual(sample);
    expect(sampleIndexes({ keyCount: 10_000, count: 500, seed: 'y' })).not.toEqual(sample);
  });

  it('takes every index once when asked for more than there are', () => {
    const sample = sampleIndexes({ keyCount: 20, count: 500, seed: 'x' });
    expect([...sample].sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
  });
});

describe('parseProcStatus', () => {
  it('reads VmRSS and VmHWM, which /proc gives in kB', () => {
    const text = 'Name:\tnode\nVmPeak:\t 9999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t11\n';
    expect(parseProcStatus(text)).toEqual({ rssBytes: 100 * 1024 * 1024, peakRssBytes: 200 * 1024 * 1024 });
  });

  it('throws when a field is missing (a kernel thread, or not Linux)', () => {
    expect(() => parseProcStatus('Name:\tkthreadd\n')).toThrow(/VmRSS/);
  });
});

describe('latencySummary', () => {
  it('reports count, nearest-rank p50 and p99, and max, whatever the order of the samples', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(latencySummary(samples)).toEqual({ count: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    expect(latencySummary([])).toEqual({ count: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 });
  });
});

describe('group key counts', () => {
  it('lists the groups that differ, a group missing from one side counting as empty', () => {
    const expected = [
      { groupId: 0, keys: 5 },
      { groupId: 1, keys: 7 },
      { groupId: 2, keys: 1 },
    ];
    const actual = [
      { groupId: 1, keys: 7 },
      { groupId: 0, keys: 4 },
      { groupId: 3, keys: 2 },
    ];
    expect(groupCountMismatches({ expected, actual })).toEqual([
      { groupId: 0, expected: 5, actual: 4 },
      { groupId: 2, expected: 1, actual: 0 },
      { groupId: 3, expected: 0, actual: 2 },
    ]);
    expect(groupCountMismatches({ expected, actual: [...expected].reverse() })).toEqual([]);
  });

  it('reads the groups of a save or restore report, and refuses any other shape', () => {
    const report = { clusterId: 'c', groups: [{ groupId: 0, index: 9, keys: 3 }] };
    expect(groupKeysOf(report, 'restore')).toEqual([{ groupId: 0, keys: 3 }]);
    expect(() => groupKeysOf({ groups: [{ groupId: 0 }] }, 'restore')).toThrow(/restore reported a group/);
    expect(() => groupKeysOf({}, 'save')).toThrow(/save reported no groups/);
  });
});

describe('parseGroupContact', () => {
  it("reads a server's own view of a group", () => {
    const body = {
      groupId: 3,
      answeredBy: 's2',
      state: 'follower',
      term: 4,
      lastContactMs: 50,
      leader: 's1',
    };
    expect(parseGroupContact(body)).toEqual({
      serverId: 's2',
      groupId: 3,
      state: 'follower',
      term: 4,
      lastContactMs: 50,
    });
  });

  it('throws on a shape it does not know, rather than reporting no lag', () => {
    expect(() => parseGroupContact({ groupId: 3, answeredBy: 's2', state: 'follower', term: 4 })).toThrow(
      /group status answered/,
    );
  });
});

describe('leadershipChanges', () => {
  const self = (nodeId: string, groups: [string | null, number][]): SelfView => ({
    nodeId,
    eventLoopLagMaxMs: 1,
    groups: groups.map(([leaderId, term]) => ({ leaderId, term })),
  });

  it('reads agent/self', () => {
    const body = {
      nodeId: 's1',
      groups: [{ leaderId: null, term: 3, role: 'candidate' }],
      eventLoopLagMs: { max: 12.5 },
    };
    expect(parseSelf(body)).toEqual({
      nodeId: 's1',
      eventLoopLagMaxMs: 12.5,
      groups: [{ leaderId: null, term: 3 }],
    });
    expect(() => parseSelf({ nodeId: 's1', groups: [] })).toThrow(/agent\/self answered/);
  });

  it('finds nothing when every server keeps every leader and term', () => {
    const views = [
      self('s1', [
        ['s1', 2],
        ['s2', 2],
      ]),
      self('s2', [
        ['s1', 2],
        ['s2', 2],
      ]),
    ];
    expect(leadershipChanges({ before: views, after: views })).toEqual([]);
  });

  it('reports a new term, or a new leader in the same term, per server and group', () => {
    const before = [
      self('s1', [
        ['s1', 2],
        ['s2', 2],
      ]),
      self('s2', [
        ['s1', 2],
        [null, 2],
      ]),
    ];
    const after = [
      self('s1', [
        ['s1', 2],
        ['s3', 3],
      ]),
      self('s2', [
        ['s1', 2],
        ['s2', 2],
      ]),
    ];
    expect(leadershipChanges({ before, after })).toEqual([
      { nodeId: 's1', groupId: 1, termBefore: 2, termAfter: 3 },
      { nodeId: 's2', groupId: 1, termBefore: 2, termAfter: 2 },
    ]);
  });
});
