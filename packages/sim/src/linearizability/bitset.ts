/** Murmur3's 32-bit finaliser: spreads consecutive ids over the whole hash space. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A fixed-size set of operation ids. The hash is the XOR of every member's mixed id, kept
 * up to date on each set and clear, so the search never rehashes the whole set per step.
 */
export class Bitset {
  readonly words: Uint32Array;
  #hash = 0;

  constructor(sizeBits: number) {
    this.words = new Uint32Array(Math.ceil(sizeBits / 32));
  }

  get hash(): number {
    return this.#hash;
  }

  has(bit: number): boolean {
    return (((this.words[bit >>> 5] ?? 0) >>> (bit & 31)) & 1) === 1;
  }

  set(bit: number): void {
    if (this.has(bit)) return;
    this.#flip(bit);
  }

  clear(bit: number): void {
    if (!this.has(bit)) return;
    this.#flip(bit);
  }

  /** A frozen copy of the words, for the cache. */
  snapshot(): Uint32Array {
    return this.words.slice();
  }

  equalsWords(other: Uint32Array): boolean {
    const words = this.words;
    if (words.length !== other.length) return false;
    for (let i = 0; i < words.length; i++) {
      if (words[i] !== other[i]) return false;
    }
    return true;
  }

  #flip(bit: number): void {
    const index = bit >>> 5;
    this.words[index] = ((this.words[index] ?? 0) ^ (1 << (bit & 31))) >>> 0;
    this.#hash = (this.#hash ^ mix32(bit + 1)) >>> 0;
  }
}
