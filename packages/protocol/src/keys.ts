/** A Raft group's number, from 0 to the cluster's group count - 1. */
export type GroupId = number;

/**
 * A key's group: FNV-1a (32-bit) over the UTF-8 bytes of the key's hash tag, modulo the
 * number of groups. The hash tag is the text between the first `{` and the next `}` when
 * that text is non-empty (as in Redis Cluster), else the whole key. Keys sharing a tag
 * share a group, so a transaction over them stays within one group.
 */
export function groupOfKey(options: { key: string; groupCount: number }): GroupId {
  return fnv1a32Utf8(hashTag(options.key)) % options.groupCount;
}

export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return key;
  return key.slice(open + 1, close);
}

const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;

function fnvStep(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, fnvPrime) >>> 0;
}

export function fnv1a32(bytes: Uint8Array): number {
  let hash = fnvOffsetBasis;
  for (const byte of bytes) hash = fnvStep(hash, byte);
  return hash;
}

/**
 * FNV-1a over the UTF-8 encoding of `text`, encoded on the fly. This package runs in
 * browsers and in Node without either's types, so it cannot name `TextEncoder`; the bytes
 * are the ones `TextEncoder` gives, lone surrogates included (as U+FFFD), which a property
 * test checks.
 */
export function fnv1a32Utf8(text: string): number {
  let hash = fnvOffsetBasis;
  for (const char of text) {
    let codePoint = char.codePointAt(0) ?? 0xfffd;
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0xfffd;
    if (codePoint < 0x80) {
      hash = fnvStep(hash, codePoint);
    } else if (codePoint < 0x800) {
      hash = fnvStep(hash, 0xc0 | (codePoint >> 6));
      hash = fnvStep(hash, 0x80 | (codePoint & 0x3f));
    } else if (codePoint < 0x10000) {
      hash = fnvStep(hash, 0xe0 | (codePoint >> 12));
      hash = fnvStep(hash, 0x80 | ((codePoint >> 6) & 0x3f));
      hash = fnvStep(hash, 0x80 | (codePoint & 0x3f));
    } else {
      hash = fnvStep(hash, 0xf0 | (codePoint >> 18));
      hash = fnvStep(hash, 0x80 | ((codePoint >> 12) & 0x3f));
      hash = fnvStep(hash, 0x80 | ((codePoint >> 6) & 0x3f));
      hash = fnvStep(hash, 0x80 | (codePoint & 0x3f));
    }
  }
  return hash;
}
