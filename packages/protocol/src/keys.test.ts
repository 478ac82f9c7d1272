import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fnv1a32, fnv1a32Utf8, groupOfKey, hashTag } from './keys.js';

describe('key partitioning', () => {
  it('uses FNV-1a 32-bit (known vectors)', () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    expect(fnv1a32(bytes(''))).toBe(0x811c9dc5);
    expect(fnv1a32(bytes('a'))).toBe(0xe40c292c);
    expect(fnv1a32(bytes('foobar'))).toBe(0xbf9cf968);
  });

  it('takes the hash tag between the first { and the next }, when non-empty', () => {
    expect(hashTag('user:{42}:name')).toBe('42');
    expect(hashTag('{a}{b}')).toBe('a');
    expect(hashTag('no-tag')).toBe('no-tag');
    expect(hashTag('empty{}tag')).toBe('empty{}tag');
    expect(hashTag('open{only')).toBe('open{only');
  });

  it('puts keys that share a tag in one group, and spreads other keys over all groups', () => {
    const groupCount = 8;
    expect(groupOfKey({ key: 'user:{42}:name', groupCount })).toBe(
      groupOfKey({ key: 'user:{42}:mail', groupCount }),
    );
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(groupOfKey({ key: `key-${i}`, groupCount }));
    expect(seen.size).toBe(groupCount);
    for (const group of seen) expect(group >= 0 && group < groupCount).toBe(true);
  });

  it('hashes a string as FNV-1a of the bytes TextEncoder gives, lone surrogates included', () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(fnv1a32Utf8(text)).toBe(fnv1a32(encoder.encode(text)));
      }),
      { numRuns: 2000 },
    );
    for (const text of ['\ud800', 'a\udc00b', '\u{1f600}', '\u00e9t\u00e9', '\u0800', '\uffff']) {
      expect(fnv1a32Utf8(text)).toBe(fnv1a32(encoder.encode(text)));
    }
  });
});
