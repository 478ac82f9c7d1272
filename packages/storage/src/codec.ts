import { assert } from '@conclave/raft';

/**
 * Little-endian binary writing and reading for the on-disk formats. Raft indexes and terms
 * are JavaScript safe integers; they are stored as u64 and refused on read above 2^53 - 1.
 */

const two32 = 0x1_0000_0000;

/** A parse failure at `offset` within the buffer being read; callers add the file name. */
export class FormatError extends Error {
  override readonly name = 'FormatError';
  readonly offset: number;

  constructor(options: { offset: number; detail: string }) {
    super(options.detail);
    this.offset = options.offset;
  }
}

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Writes into a buffer sized in advance: an overrun is a sizing bug, so it asserts. */
export class ByteWriter {
  readonly bytes: Buffer;
  readonly #view: DataView;
  offset = 0;

  constructor(sizeBytes: number) {
    this.bytes = Buffer.allocUnsafe(sizeBytes);
    this.#view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  #reserve(n: number): number {
    const at = this.offset;
    assert(at + n <= this.bytes.length, () => `ByteWriter overrun: ${at} + ${n} > ${this.bytes.length}`);
    this.offset = at + n;
    return at;
  }

  u8(value: number): void {
    this.#view.setUint8(this.#reserve(1), value);
  }

  u16(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff, () => `u16 out of range: ${value}`);
    this.#view.setUint16(this.#reserve(2), value, true);
  }

  u32(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value < two32, () => `u32 out of range: ${value}`);
    this.#view.setUint32(this.#reserve(4), value, true);
  }

  u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `u64 not a safe non-negative integer: ${value}`);
    const at = this.#reserve(8);
    this.#view.setUint32(at, value >>> 0, true);
    this.#view.setUint32(at + 4, Math.floor(value / two32), true);
  }

  /** Patch a u32 already reserved (frame lengths and checksums are known last). */
  u32At(offset: number, value: number): void {
    this.#view.setUint32(offset, value >>> 0, true);
  }

  raw(data: Uint8Array): void {
    this.bytes.set(data, this.#reserve(data.length));
  }

  /** A u16 byte length, then the UTF-8 bytes. */
  string16(text: string): void {
    const n = utf8Bytes(text);
    this.u16(n);
    this.bytes.write(text, this.#reserve(n), n, 'utf8');
  }
}

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  offset: number;

  constructor(options: { bytes: Uint8Array; start?: number; end?: number }) {
    this.#bytes = options.bytes;
    this.#view = new DataView(options.bytes.buffer, options.bytes.byteOffset, options.bytes.byteLength);
    this.offset = options.start ?? 0;
    this.#end = options.end ?? options.bytes.length;
  }

  get remaining(): number {
    return this.#end - this.offset;
  }

  #take(n: number, what: string): number {
    if (n > this.#end - this.offset) {
      throw new FormatError({
        offset: this.offset,
        detail: `${what}: needs ${n} bytes, ${this.#end - this.offset} left`,
      });
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u8(what: string): number {
    return this.#view.getUint8(this.#take(1, what));
  }

  u16(what: string): number {
    return this.#view.getUint16(this.#take(2, what), true);
  }

  u32(what: string): number {
    return this.#view.getUint32(this.#take(4, what), true);
  }

  u64(what: string): number {
    const at = this.#take(8, what);
    const lo = this.#view.getUint32(at, true);
    const hi = this.#view.getUint32(at + 4, true);
    if (hi > 0x1fffff) throw new FormatError({ offset: at, detail: `${what}: u64 above 2^53 - 1` });
    return hi * two32 + lo;
  }

  /** A copy, so a decoded value never pins the (possibly huge) buffer it came from. */
  bytes(n: number, what: string): Uint8Array {
    const at = this.#take(n, what);
    return this.#bytes.slice(at, at + n);
  }

  string16(what: string): string {
    const n = this.u16(what);
    const at = this.#take(n, what);
    return Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset + at, n).toString('utf8');
  }
}
