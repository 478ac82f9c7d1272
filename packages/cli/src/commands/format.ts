import type { KvPair } from '@conclave/client';
import { valueText } from './common.js';

/** A KV entry in `--json` output: the value in base64, as `kv export` writes it. */
export function entryJson(entry: KvPair) {
  return {
    key: entry.key,
    value: Buffer.from(entry.value).toString('base64'),
    flags: entry.flags,
    createIndex: entry.createIndex,
    modifyIndex: entry.modifyIndex,
    lockIndex: entry.lockIndex,
    session: entry.session,
  };
}

/** `kv get --detailed`: one field per line, as `consul kv get -detailed` prints them. */
export function detailedText(entry: KvPair): string {
  return table([
    ['CreateIndex', String(entry.createIndex)],
    ['Flags', String(entry.flags)],
    ['Key', entry.key],
    ['LockIndex', String(entry.lockIndex)],
    ['ModifyIndex', String(entry.modifyIndex)],
    ['Session', entry.session ?? '-'],
    ['Value', valueText(entry.value)],
  ]);
}

/** Rows as left-aligned columns two spaces apart, each line ending in a newline. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .concat('\n'),
    )
    .join('');
}

/**
 * A primitive's value (a register's, a map entry's) in `--json` output: base64, as
 * `kv get --json` and the HTTP API give values, with its version (the Raft index of its
 * last write, for `--if-version`).
 */
export function versionedJson(entry: { readonly value: Uint8Array; readonly version: number }) {
  return { value: Buffer.from(entry.value).toString('base64'), version: entry.version };
}
