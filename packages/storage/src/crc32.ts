import * as zlib from 'node:zlib';

/**
 * CRC-32 (IEEE 802.3, the zlib polynomial). Node gained the native `zlib.crc32` in 20.15 and
 * 22.2; on older Node the table-driven version below computes the same value, so files stay
 * readable whichever Node wrote them.
 */
export type Crc32 = (data: Uint8Array, previous?: number) => number;

const table = buildTable();

function buildTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** The portable fallback; exported so tests can check it against the native one. */
export function crc32Table(data: Uint8Array, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) {
    // Both lookups are in range: the index is masked to a byte.
    crc = ((table[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8)) >>> 0;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

// @types/node declares crc32 unconditionally; at runtime it may be missing.
const native: unknown = (zlib as { crc32?: unknown }).crc32;

export const crc32: Crc32 =
  typeof native === 'function'
    ? (data, previous = 0) => (native as (d: Uint8Array, v: number) => number)(data, previous) >>> 0
    : crc32Table;

export const crc32IsNative = typeof native === 'function';
