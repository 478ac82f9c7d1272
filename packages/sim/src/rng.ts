import { createPrng, type Prng } from '@conclave/raft';

/**
 * A seeded random source for one concern of the world (the network, a disk, a node's
 * clock...). Each concern draws from its own stream, forked from the run's seed by a
 * label, so adding a draw in one concern never shifts the choices of another: a seed
 * keeps meaning the same schedule as the simulator grows.
 */
export class Rng implements Prng {
  readonly #prng: Prng;

  constructor(prng: Prng) {
    this.#prng = prng;
  }

  /** A stream for `label`, independent of every other label under the same seed. */
  static fork(options: { seed: number; label: string }): Rng {
    return new Rng(createPrng(mixSeed(options.seed, options.label)));
  }

  nextUint32(): number {
    return this.#prng.nextUint32();
  }

  nextInt(bound: number): number {
    return this.#prng.nextInt(bound);
  }

  nextFloat(): number {
    return this.#prng.nextFloat();
  }

  /** True with probability `probability` (0 never draws true, 1 always does). */
  chance(probability: number): boolean {
    if (probability <= 0) return false;
    if (probability >= 1) return true;
    return this.#prng.nextFloat() < probability;
  }

  /** An integer in [min, max], both inclusive. */
  intBetween(range: { min: number; max: number }): number {
    const { min, max } = range;
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min) {
      throw new RangeError(`intBetween: bad range [${min}, ${max}]`);
    }
    return min + this.#prng.nextInt(max - min + 1);
  }

  /** A float in [min, max). */
  floatBetween(range: { min: number; max: number }): number {
    return range.min + (range.max - range.min) * this.#prng.nextFloat();
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.#prng.nextInt(items.length)];
    if (item === undefined) throw new RangeError('pick: empty list');
    return item;
  }

  /** A new array holding `items` in a random order (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.#prng.nextInt(i + 1);
      const a = out[i] as T;
      out[i] = out[j] as T;
      out[j] = a;
    }
    return out;
  }
}

/** FNV-1a over the label, folded into the seed: a cheap, stable 32-bit derivation. */
export function mixSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  // Fold the high bits of seeds beyond 2^32 too, so seeds 1 and 2^32+1 differ.
  h = Math.imul(h ^ Math.floor(seed / 0x1_0000_0000), 0x01000193) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}
