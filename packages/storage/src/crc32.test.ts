import { describe, expect, it } from 'vitest';
import { crc32, crc32IsNative, crc32Table } from './crc32.js';

describe('crc32', () => {
  it('matches the standard check value', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Table(check)).toBe(0xcbf43926);
  });

  it('the table fallback agrees with the native one, also incrementally', () => {
    const data = new Uint8Array(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    expect(crc32Table(data)).toBe(crc32(data));
    const split = crc32Table(data.subarray(4000), crc32Table(data.subarray(0, 4000)));
    expect(split).toBe(crc32(data));
    expect(typeof crc32IsNative).toBe('boolean');
  });
});
