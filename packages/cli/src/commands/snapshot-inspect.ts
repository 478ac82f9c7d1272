import type { ArchiveMeta, PartRows } from '@conclave/server/archive';
import { table } from './format.js';

/** One prefix's share of the keys: the key up to and including its first '/', or the key. */
export interface PrefixUsage {
  readonly prefix: string;
  count: number;
  /** Key and value bytes. */
  bytes: number;
}

/** The row that gathers prefixes past the tally's maximum. */
export const otherPrefix = '(other)';

/**
 * Keys and bytes by prefix, fed one part's rows at a time as an archive streams past: only
 * the tallies are held. At most `prefixesMax` distinct prefixes are kept; keys of prefixes
 * first seen after that are counted under `(other)`, so a store of unique keys without '/'
 * cannot grow the tally without bound.
 */
export class PrefixTally {
  private readonly usage = new Map<string, PrefixUsage>();
  private readonly other: PrefixUsage = { prefix: otherPrefix, count: 0, bytes: 0 };

  constructor(private readonly prefixesMax: number) {}

  add(rows: PartRows): void {
    for (const entry of rows.kvs) {
      const slash = entry.key.indexOf('/');
      const prefix = slash === -1 ? entry.key : entry.key.slice(0, slash + 1);
      let row = this.usage.get(prefix);
      if (row === undefined && this.usage.size < this.prefixesMax) {
        row = { prefix, count: 0, bytes: 0 };
        this.usage.set(prefix, row);
      }
      const into = row ?? this.other;
      into.count += 1;
      into.bytes += Buffer.byteLength(entry.key) + entry.value.byteLength;
    }
  }

  /** Sorted by prefix, then `(other)` when anything was folded into it. */
  list(): PrefixUsage[] {
    const sorted = [...this.usage.values()].sort((a, b) =>
      a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0,
    );
    return this.other.count === 0 ? sorted : [...sorted, { ...this.other }];
  }
}

/**
 * What `snapshot inspect` prints: the archive's meta, each group's index, term, size and
 * keys, and (with --kvdetails) the keys by prefix.
 */
export function inspectReport(meta: ArchiveMeta, prefixes: readonly PrefixUsage[] | null) {
  const groups = meta.groups.map((g) => ({
    groupId: g.groupId,
    index: g.index,
    term: g.term,
    bytes: g.bytes,
    parts: g.parts,
    keys: g.keys,
    voters: g.voters,
    learners: g.learners,
    sha256: g.sha256,
  }));
  const total = {
    bytes: groups.reduce((sum, g) => sum + g.bytes, 0),
    keys: groups.reduce((sum, g) => sum + g.keys, 0),
  };
  const head = [
    `Cluster   ${meta.clusterId}`,
    `Created   ${meta.createdAt}`,
    `Format    ${meta.formatVersion}`,
    `Groups    ${groups.length}`,
    '',
  ].join('\n');
  const groupTable = table([
    ['Group', 'Index', 'Term', 'Size', 'Parts', 'Keys', 'Voters'],
    ...groups.map((g) => [
      String(g.groupId),
      String(g.index),
      String(g.term),
      String(g.bytes),
      String(g.parts),
      String(g.keys),
      g.voters.join(','),
    ]),
    ['total', '', '', String(total.bytes), '', String(total.keys), ''],
  ]);
  const prefixTable =
    prefixes === null
      ? ''
      : `\n${table([['Prefix', 'Count', 'Size'], ...prefixes.map((p) => [p.prefix, String(p.count), String(p.bytes)])])}`;
  return {
    text: `${head}\n${groupTable}${prefixTable}`,
    json: {
      clusterId: meta.clusterId,
      createdAt: meta.createdAt,
      formatVersion: meta.formatVersion,
      groups,
      total,
      ...(prefixes === null ? {} : { kvdetails: prefixes }),
    },
  };
}
