import { describe, expect, it } from 'vitest';
import { createPrng } from './prng.js';

describe('createPrng', () => {
  it('gives the same sequence for the same seed, so runs replay exactly', () => {
    const a = createPrng(42);
    const b = createPrng(42);
    const seqA = Array.from({ length: 100 }, () => a.nextUint32());
    const seqB = Array.from({ length: 100 }, () => b.nextUint32());
    expect(seqA).toEqual(seqB);
  });

  it('gives different sequences for different seeds', () => {
    const a = createPrng(1);
    const b = createPrng(2);
    expect(Array.from({ length: 8 }, () => a.nextUint32())).not.toEqual(
      Array.from({ length: 8 }, () => b.nextUint32()),
    );
  });

  it('keeps nextInt within its bound and reaches every value', () => {
    const prng = createPrng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const x = prng.nextInt(10);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(10);
      seen.add(x);
    }
    expect(seen.size).toBe(10);
  });

  it('refuses a bound that is not a positive integer', () => {
    const prng = createPrng(7);
    expect(() => prng.nextInt(0)).toThrow(RangeError);
    expect(() => prng.nextInt(1.5)).toThrow(RangeError);
  });

  it('keeps nextFloat in [0, 1)', () => {
    const prng = createPrng(9);
    for (let i = 0; i < 1000; i++) {
      const x = prng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
