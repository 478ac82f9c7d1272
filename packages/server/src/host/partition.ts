import type { GroupId } from './ports.js';

/**
 * A key's group: FNV-1a (32-bit) over the UTF-8 bytes of the key's hash tag, modulo the
 * number of groups. The hash tag is the text between the first `{` and the next `}` when
 * that text is non-empty (as in Redis Cluster), else the whole key. Keys sharing a tag
 * share a group, so a transaction over them stays within one group.
 */
export function groupOfKey(options: { key: string; groupCount: number }): GroupId {
  return fnv1a32(new TextEncoder().encode(hashTag(options.key))) % options.groupCount;
}

export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return key;
  return key.slice(open + 1, close);
}

export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
