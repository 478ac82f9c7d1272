import { describe, expect, it } from 'vitest';
import { HistoryRecorder } from './history.js';
import type { KvInput, KvOutput } from './kv-model.js';

describe('HistoryRecorder', () => {
  it('records completed, abandoned and still-pending operations', () => {
    const recorder = new HistoryRecorder<KvInput, KvOutput>();
    const a = recorder.invoke(1, { kind: 'put', key: 'x', value: 'a' }, 0);
    const b = recorder.invoke(2, { kind: 'get', key: 'x' }, 1);
    recorder.invoke(3, { kind: 'get', key: 'x' }, 2);
    recorder.complete(a, {}, 3);
    recorder.abandon(b);
    expect(recorder.operations()).toEqual([
      { clientId: 1, input: { kind: 'put', key: 'x', value: 'a' }, call: 0, output: {}, return: 3 },
      { clientId: 2, input: { kind: 'get', key: 'x' }, call: 1, output: undefined, return: Infinity },
      // Still pending: the cluster may yet apply it, so it is reported as an unknown outcome.
      { clientId: 3, input: { kind: 'get', key: 'x' }, call: 2, output: undefined, return: Infinity },
    ]);
  });

  it('refuses to finish an operation twice or before it started', () => {
    const recorder = new HistoryRecorder<KvInput, KvOutput>();
    const a = recorder.invoke(1, { kind: 'get', key: 'x' }, 5);
    expect(() => recorder.complete(a, { value: null }, 4)).toThrow(RangeError);
    recorder.complete(a, { value: null }, 6);
    expect(() => recorder.complete(a, { value: null }, 7)).toThrow(/already completed/);
    expect(() => recorder.abandon(a)).toThrow(/already completed/);
    expect(() => recorder.abandon(99)).toThrow(RangeError);
  });

  it('stops growing at operationsMax', () => {
    const recorder = new HistoryRecorder<KvInput, KvOutput>({ operationsMax: 2 });
    recorder.invoke(1, { kind: 'get', key: 'x' }, 0);
    recorder.invoke(1, { kind: 'get', key: 'x' }, 1);
    expect(() => recorder.invoke(1, { kind: 'get', key: 'x' }, 2)).toThrow(/operationsMax/);
    expect(() => new HistoryRecorder({ operationsMax: 0 })).toThrow(RangeError);
  });
});
