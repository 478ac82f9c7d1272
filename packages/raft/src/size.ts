import type { Entry } from './types.js';

/** Bytes an entry is charged beyond its data: term, index and type, as any codec frames them. */
export const entryOverheadBytes = 24;

export function entrySizeBytes(entry: Entry): number {
  return entry.data.byteLength + entryOverheadBytes;
}

export function entriesSizeBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entrySizeBytes(entry);
  return total;
}

/**
 * The longest prefix of `entries` within `bytesMax` and `countMax`. It always keeps the
 * first entry, so a single entry larger than the limit still makes progress.
 */
export function limitEntries(
  entries: readonly Entry[],
  options: { bytesMax: number; countMax: number },
): Entry[] {
  const out: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (out.length >= options.countMax) break;
    const size = entrySizeBytes(entry);
    if (out.length > 0 && bytes + size > options.bytesMax) break;
    out.push(entry);
    bytes += size;
  }
  return out;
}
