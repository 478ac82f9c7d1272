import { describe, expect, it } from 'vitest';
import { EventQueue } from './event-queue.js';
import { Rng } from './rng.js';

describe('EventQueue', () => {
  it('pops by time, then by insertion order', () => {
    const q = new EventQueue<string>();
    q.push({ atMs: 5, event: 'c' });
    q.push({ atMs: 1, event: 'a' });
    q.push({ atMs: 5, event: 'd' });
    q.push({ atMs: 3, event: 'b' });
    q.push({ atMs: 5, event: 'e' });
    const out: string[] = [];
    for (let item = q.pop(); item !== undefined; item = q.pop()) out.push(item.event);
    expect(out).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(q.size).toBe(0);
    expect(q.pop()).toBeUndefined();
  });

  it('matches a stable sort on thousands of random pushes and interleaved pops', () => {
    const rng = Rng.fork({ seed: 7, label: 'test' });
    const q = new EventQueue<number>();
    const model: { atMs: number; seq: number }[] = [];
    let seq = 0;
    for (let round = 0; round < 5_000; round++) {
      if (rng.chance(0.6) || model.length === 0) {
        const atMs = rng.nextInt(50);
        q.push({ atMs, event: seq });
        model.push({ atMs, seq });
        seq++;
      } else {
        model.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
        const expected = model.shift();
        expect(q.pop()?.event).toBe(expected?.seq);
      }
      expect(q.size).toBe(model.length);
    }
  });

  it('peeks without removing and rejects non-finite times', () => {
    const q = new EventQueue<string>();
    expect(q.peek()).toBeUndefined();
    q.push({ atMs: 2, event: 'x' });
    expect(q.peek()?.event).toBe('x');
    expect(q.size).toBe(1);
    expect(() => q.push({ atMs: Number.NaN, event: 'bad' })).toThrow(RangeError);
  });
});
