/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32). The core takes all its
 * randomness from one of these, so two nodes fed the same inputs behave identically.
 */
export interface Prng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number;
  /** A uniformly distributed integer in [0, bound). */
  nextInt(bound: number): number;
  /** A float in [0, 1). */
  nextFloat(): number;
}

export function createPrng(seed: number): Prng {
  let s = seed >>> 0;
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  return {
    nextUint32,
    nextInt(bound: number): number {
      if (!Number.isInteger(bound) || bound <= 0 || bound > 0x1_0000_0000) {
        throw new RangeError(`nextInt bound must be an integer in [1, 2^32], got ${bound}`);
      }
      // Rejection sampling keeps the distribution exactly uniform.
      const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
      for (;;) {
        const x = nextUint32();
        if (x < limit) return x % bound;
      }
    },
    nextFloat(): number {
      return nextUint32() / 0x1_0000_0000;
    },
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
