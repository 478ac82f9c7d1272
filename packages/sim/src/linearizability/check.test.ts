import { describe, expect, it, vi } from 'vitest';
import { checkLinearizable } from './check.js';
import { type KvInput, type KvOperation, type KvOutput, type KvState, kvModel } from './kv-model.js';
import type { Model } from './model.js';
import { cas, done, get, lost, put } from './test-helpers.js';

const options = { stepsMax: 100_000 };

function check(history: readonly KvOperation[]) {
  return checkLinearizable(kvModel, history, options);
}

describe('checkLinearizable: linearizable histories', () => {
  it('accepts an empty history', () => {
    expect(check([])).toEqual({ result: 'ok' });
  });

  it('accepts a write followed by a read of it', () => {
    expect(check([done(1, put('x', 'a'), 0, {}, 1), done(2, get('x'), 2, { value: 'a' }, 3)])).toEqual({
      result: 'ok',
    });
  });

  it('accepts concurrent writes observed in either order', () => {
    const writes = [done(1, put('x', 'a'), 0, {}, 10), done(2, put('x', 'b'), 0, {}, 10)];
    expect(check([...writes, done(3, get('x'), 11, { value: 'a' }, 12)]).result).toBe('ok');
    expect(check([...writes, done(3, get('x'), 11, { value: 'b' }, 12)]).result).toBe('ok');
  });

  it('accepts a read concurrent with a write returning either value', () => {
    const write = done(1, put('x', 'a'), 2, {}, 6);
    expect(check([write, done(2, get('x'), 3, { value: null }, 4)]).result).toBe('ok');
    expect(check([write, done(2, get('x'), 3, { value: 'a' }, 4)]).result).toBe('ok');
  });

  it('treats a return and a call at the same time as concurrent', () => {
    const history = [done(1, put('x', 'a'), 0, {}, 5), done(2, get('x'), 5, { value: null }, 6)];
    expect(check(history).result).toBe('ok');
  });

  it('accepts CAS chains that succeed and fail as the register dictates', () => {
    const history = [
      done(1, cas('x', null, 'a'), 0, { ok: true }, 1),
      done(2, cas('x', null, 'b'), 2, { ok: false }, 3),
      done(3, cas('x', 'a', 'c'), 4, { ok: true }, 5),
      done(4, get('x'), 6, { value: 'c' }, 7),
    ];
    expect(check(history).result).toBe('ok');
  });
});

describe('checkLinearizable: violations', () => {
  it('rejects a stale read after a completed write', () => {
    const verdict = check([
      done(1, put('x', 'a'), 0, {}, 1),
      done(1, put('x', 'b'), 2, {}, 3),
      done(2, get('x'), 4, { value: 'a' }, 5),
    ]);
    expect(verdict.result).toBe('illegal');
    if (verdict.result !== 'illegal') return;
    expect(verdict.partition).toBe(0);
    expect(verdict.longestPrefix.map((op) => op.input)).toEqual([put('x', 'a'), put('x', 'b')]);
    expect(verdict.explanation).toContain('get("x") -> "a"');
  });

  it('rejects two sequential writes read in reverse order', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 1),
      done(1, put('x', 'b'), 2, {}, 3),
      done(2, get('x'), 4, { value: 'b' }, 5),
      done(2, get('x'), 6, { value: 'a' }, 7),
    ];
    expect(check(history).result).toBe('illegal');
  });

  it('rejects a lost CAS: acknowledged, then not visible', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 1),
      done(2, cas('x', 'a', 'b'), 2, { ok: true }, 3),
      done(3, get('x'), 4, { value: 'a' }, 5),
    ];
    expect(check(history).result).toBe('illegal');
  });

  it('rejects two concurrent CASes that both won from the same expected value', () => {
    const history = [
      done(1, cas('x', null, 'a'), 0, { ok: true }, 10),
      done(2, cas('x', null, 'b'), 0, { ok: true }, 10),
    ];
    expect(check(history).result).toBe('illegal');
  });

  it('rejects reads that see concurrent writes in two different orders', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 10),
      done(2, put('x', 'b'), 0, {}, 10),
      done(3, get('x'), 11, { value: 'a' }, 12),
      done(3, get('x'), 13, { value: 'b' }, 14),
    ];
    expect(check(history).result).toBe('illegal');
  });

  it('rejects a read that misses a write which returned strictly before the read was called', () => {
    const history = [done(1, put('x', 'a'), 0, {}, 5), done(2, get('x'), 6, { value: null }, 7)];
    expect(check(history).result).toBe('illegal');
  });
});

describe('checkLinearizable: unknown outcomes', () => {
  it('lets an unknown-outcome put take effect later, when a read observes it', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 1),
      lost(2, put('x', 'b'), 2),
      done(3, get('x'), 3, { value: 'a' }, 4),
      done(3, get('x'), 10, { value: 'b' }, 11),
    ];
    expect(check(history).result).toBe('ok');
  });

  it('lets an unknown-outcome put never take effect', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 1),
      lost(2, put('x', 'b'), 2),
      done(3, get('x'), 10, { value: 'a' }, 11),
    ];
    expect(check(history).result).toBe('ok');
  });

  it('rejects an unknown-outcome put observed and then un-observed', () => {
    const history = [
      done(1, put('x', 'a'), 0, {}, 1),
      lost(2, put('x', 'b'), 2),
      done(3, get('x'), 10, { value: 'b' }, 11),
      done(3, get('x'), 12, { value: 'a' }, 13),
    ];
    expect(check(history).result).toBe('illegal');
  });

  it('rejects an unknown-outcome put observed before it was called', () => {
    const history = [done(1, get('x'), 0, { value: 'b' }, 1), lost(2, put('x', 'b'), 2)];
    expect(check(history).result).toBe('illegal');
  });

  it('lets an unknown-outcome CAS succeed or not, but only once', () => {
    const casOp = lost(1, cas('x', null, 'a'), 0);
    expect(check([casOp, done(2, get('x'), 5, { value: null }, 6)]).result).toBe('ok');
    expect(check([casOp, done(2, get('x'), 5, { value: 'a' }, 6)]).result).toBe('ok');
  });

  it('decides at once many unknown-outcome writes nobody observed, which used to exhaust the search', () => {
    // Seed 826's shape: dozens of timed-out writes to one key, interleaved with reads that
    // only ever see acknowledged values.
    const history: KvOperation[] = [done(0, put('x', 'a0'), 0, {}, 1)];
    for (let i = 1; i <= 80; i++) history.push(lost(i, put('x', `lost${i}`), i * 2));
    for (let i = 1; i <= 20; i++) {
      history.push(done(100 + i, put('x', `a${i}`), 200 + i * 4, {}, 201 + i * 4));
      history.push(done(200 + i, get('x'), 202 + i * 4, { value: `a${i}` }, 203 + i * 4));
    }
    expect(checkLinearizable(kvModel, history, { stepsMax: 5_000 }).result).toBe('ok');
  });

  it('keeps an unknown-outcome write that a read or a compare-and-set observed', () => {
    const read = [
      done(1, put('x', 'a'), 0, {}, 1),
      lost(2, put('x', 'b'), 5),
      done(3, get('x'), 2, { value: 'b' }, 3),
    ];
    expect(check(read).result).toBe('illegal');
    const named = [
      done(1, put('x', 'a'), 0, {}, 1),
      lost(2, put('x', 'b'), 5),
      done(3, cas('x', 'b', 'c'), 2, { ok: true }, 3),
    ];
    expect(check(named).result).toBe('illegal');
  });

  it('keeps an unknown-outcome write that may explain a failed compare-and-set', () => {
    // The cas failed, so x was not absent: only the lost put can have written it.
    const history = [lost(1, put('x', 'a'), 0), done(2, cas('x', null, 'b'), 1, { ok: false }, 2)];
    expect(check(history).result).toBe('ok');
    expect(check([done(2, cas('x', null, 'b'), 1, { ok: false }, 2), lost(1, put('x', 'a'), 3)]).result).toBe(
      'illegal',
    );
  });

  it('drops a read with unknown outcome without consulting the model', () => {
    const step = vi.fn(kvModel.step);
    const spied: Model<KvState, KvInput, KvOutput> = { ...kvModel, step };
    const history = [done(1, put('x', 'a'), 0, {}, 1), lost(2, get('x'), 2)];
    expect(checkLinearizable(spied, history, options).result).toBe('ok');
    expect(step.mock.calls.map(([, input]) => input.kind)).toEqual(['put']);
  });
});

describe('checkLinearizable: partitions and limits', () => {
  /** Per key: `width` fully concurrent puts, then a read of the first put's value. */
  function manyKeys(keys: number, width: number): KvOperation[] {
    const history: KvOperation[] = [];
    for (let k = 0; k < keys; k++) {
      for (let w = 0; w < width; w++) history.push(done(w, put(`k${k}`, `v${w}`), 0, {}, 10));
      history.push(done(width, get(`k${k}`), 11, { value: 'v0' }, 12));
    }
    return history;
  }

  it('checks keys independently, so a many-key history stays cheap', () => {
    const history = manyKeys(100, 5);
    const partition = vi.fn(kvModel.partition);
    const spied: Model<KvState, KvInput, KvOutput> = { ...kvModel, partition };
    expect(checkLinearizable(spied, history, { stepsMax: 25_000 }).result).toBe('ok');
    expect(partition).toHaveBeenCalledOnce();
    // The same history as one partition is a search over all keys' interleavings at once,
    // and does not fit in the same budget.
    const { partition: _unused, ...unpartitioned } = kvModel;
    expect(checkLinearizable(unpartitioned, history, { stepsMax: 25_000 }).result).toBe('unknown');
  });

  it('names the partition that failed', () => {
    const history = [
      ...manyKeys(3, 2),
      done(9, put('bad', 'a'), 20, {}, 21),
      done(9, get('bad'), 22, { value: null }, 23),
    ];
    const verdict = check(history);
    expect(verdict.result).toBe('illegal');
    if (verdict.result === 'illegal') expect(verdict.partition).toBe(3);
  });

  /** Many concurrent puts and a read no order can explain: the search must exhaust all orders. */
  function hopeless(width: number): KvOperation[] {
    const history = Array.from({ length: width }, (_, w) => done(w, put('x', `v${w}`), 0, {}, 10));
    return [...history, done(width, get('x'), 11, { value: 'never' }, 12)];
  }

  it('returns unknown, not a hang, when stepsMax runs out', () => {
    const verdict = checkLinearizable(kvModel, hopeless(24), { stepsMax: 10_000 });
    expect(verdict).toEqual({ result: 'unknown', reason: expect.stringContaining('stepsMax (10000)') });
  });

  it('returns unknown when timeBudgetMs runs out', () => {
    const startedMs = performance.now();
    const verdict = checkLinearizable(kvModel, hopeless(24), { stepsMax: 1e12, timeBudgetMs: 50 });
    expect(verdict.result).toBe('unknown');
    expect(performance.now() - startedMs).toBeLessThan(5_000);
  });

  it('returns unknown when the memoisation cache outgrows cacheBytesMax', () => {
    const verdict = checkLinearizable(kvModel, hopeless(24), { stepsMax: 1e9, cacheBytesMax: 100_000 });
    expect(verdict).toEqual({ result: 'unknown', reason: expect.stringContaining('cacheBytesMax') });
  });

  it('proves a small hopeless history illegal within budget', () => {
    expect(check(hopeless(6)).result).toBe('illegal');
  });

  it('refuses malformed histories and options instead of guessing', () => {
    expect(() => check([done(1, get('x'), 5, { value: null }, 4)])).toThrow(RangeError);
    expect(() => check([{ ...lost(1, put('x', 'a'), 0), return: 7 }])).toThrow(RangeError);
    expect(() => check([{ ...done(1, put('x', 'a'), 0, {}, 1), return: Number.POSITIVE_INFINITY }])).toThrow(
      RangeError,
    );
    expect(() => checkLinearizable(kvModel, [], { stepsMax: 0 })).toThrow(RangeError);
  });
});
