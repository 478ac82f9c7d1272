import { type Archive, checkGroupState } from '../../archive/index.js';
import { table } from './format.js';

/** One prefix's share of the keys: the key up to and including its first '/', or the key. */
interface PrefixUsage {
  readonly prefix: string;
  count: number;
  /** Key and value bytes. */
  bytes: number;
}

/**
 * What `snapshot inspect` prints: the archive's meta, each group's index, term, size and
 * keys, and with `kvdetails` the keys by prefix (which decodes every group's state).
 */
export function inspectArchive(archive: Archive, options: { kvdetails: boolean }) {
  const { meta } = archive;
  const groups = meta.groups.map((g) => ({
    groupId: g.groupId,
    index: g.index,
    term: g.term,
    bytes: g.bytes,
    keys: g.keys,
    voters: g.voters,
    learners: g.learners,
    sha256: g.sha256,
  }));
  const prefixes = options.kvdetails ? prefixUsage(archive) : null;
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
    ['Group', 'Index', 'Term', 'Size', 'Keys', 'Voters'],
    ...groups.map((g) => [
      String(g.groupId),
      String(g.index),
      String(g.term),
      String(g.bytes),
      String(g.keys),
      g.voters.join(','),
    ]),
    ['total', '', '', String(total.bytes), String(total.keys), ''],
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

/** Keys by prefix over every group, sorted by prefix; one group decoded at a time. */
function prefixUsage(archive: Archive): PrefixUsage[] {
  const usage = new Map<string, PrefixUsage>();
  for (const group of archive.groups) {
    for (const entry of checkGroupState(group).kvs) {
      const slash = entry.key.indexOf('/');
      const prefix = slash === -1 ? entry.key : entry.key.slice(0, slash + 1);
      const row = usage.get(prefix) ?? { prefix, count: 0, bytes: 0 };
      row.count += 1;
      row.bytes += Buffer.byteLength(entry.key) + entry.value.byteLength;
      usage.set(prefix, row);
    }
  }
  return [...usage.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
}
