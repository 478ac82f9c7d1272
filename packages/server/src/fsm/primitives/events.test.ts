import { describe, expect, it } from 'vitest';
import { PrimitiveEventLog } from './events.js';

const value = (byte: number) => new Uint8Array([byte]);
const all = () => true;

describe('the primitives’ event log', () => {
  it('answers every change after a version, oldest first', () => {
    const log = new PrimitiveEventLog();
    log.append(5, [{ rowKey: 'a', value: value(1) }]);
    log.append(7, [{ rowKey: 'b', value: null }]);
    expect(log.since({ after: 0, matches: all })?.map((c) => c.index)).toEqual([5, 7]);
    expect(log.since({ after: 5, matches: all })?.map((c) => c.rowKey)).toEqual(['b']);
  });

  it('keeps only the last change of a row within one entry', () => {
    const log = new PrimitiveEventLog();
    log.append(3, [
      { rowKey: 'a', value: value(1) },
      { rowKey: 'a', value: value(2) },
    ]);
    expect(log.since({ after: 0, matches: all })).toEqual([{ index: 3, rowKey: 'a', value: value(2) }]);
  });

  it('says compacted (null) for a version older than what it still holds, by count and by bytes', () => {
    const byCount = new PrimitiveEventLog({ eventLogChangesMax: 2, eventLogBytesMax: 1024 });
    for (const index of [1, 2, 3]) byCount.append(index, [{ rowKey: 'a', value: value(index) }]);
    expect(byCount.floor).toBe(1);
    expect(byCount.since({ after: 0, matches: all })).toBeNull();
    expect(byCount.since({ after: 1, matches: all })?.map((c) => c.index)).toEqual([2, 3]);

    const byBytes = new PrimitiveEventLog({ eventLogChangesMax: 100, eventLogBytesMax: 2 });
    for (const index of [1, 2, 3]) byBytes.append(index, [{ rowKey: 'a', value: value(index) }]);
    expect(byBytes.since({ after: 0, matches: all })).toBeNull();
    expect(byBytes.since({ after: 1, matches: all })?.length).toBe(2);
  });

  it('starts afresh after a reset: nothing at or before its index is known', () => {
    const log = new PrimitiveEventLog();
    log.append(4, [{ rowKey: 'a', value: value(1) }]);
    log.reset(10);
    expect(log.since({ after: 4, matches: all })).toBeNull();
    expect(log.since({ after: 10, matches: all })).toEqual([]);
  });
});
