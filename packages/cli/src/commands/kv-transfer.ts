import { type ConclaveClient, ConclaveClientError } from '@conclave/client';
import { groupOfKey } from '@conclave/protocol';
import type { Command } from 'commander';
import {
  type CliContext,
  inputBytesMax,
  printJson,
  readAll,
  readInputFile,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';

/** One entry of `kv export` / `kv import`, as `consul kv export` writes it. */
export interface ExportedEntry {
  readonly key: string;
  readonly flags: number;
  /** Base64. */
  readonly value: string;
}

/**
 * An import transaction's bounds: well under the server's defaults (128 operations, 512 KiB
 * of values), so a batch is never refused for its size.
 */
export const importBatchOpsMax = 64;
export const importBatchValueBytesMax = 256 * 1024;
/** Most entries one import reads. */
export const importEntriesMax = 1_000_000;

interface ImportFlags extends ServerFlags {
  readonly prefix?: string;
}

export function registerKvTransfer(kv: Command, ctx: CliContext): void {
  const exportCommand = kv
    .command('export')
    .description('print every entry under a prefix as JSON: [{key, flags, value (base64)}]')
    .argument('[prefix]', 'the prefix (default: every key)', '');
  serverOptions(exportCommand, { json: false }).action((prefix: string, flags: ServerFlags) =>
    runWithClient(ctx, flags, (client) => kvExport(ctx, { client, prefix })),
  );

  const importCommand = kv
    .command('import')
    .description('write the entries of a `kv export` document')
    .argument('[file]', 'the document: a file, "@file", or "-" for stdin (default)', '-')
    .option('--prefix <prefix>', 'put this in front of every imported key');
  serverOptions(importCommand, { json: true }).action((file: string, flags: ImportFlags) =>
    runWithClient(ctx, flags, (client) => kvImport(ctx, { client, file, flags })),
  );
}

async function kvExport(
  ctx: CliContext,
  options: { client: ConclaveClient; prefix: string },
): Promise<ExitCode> {
  const { value: entries } = await options.client.kvList(options.prefix);
  const exported: ExportedEntry[] = entries.map((e) => ({
    key: e.key,
    flags: e.flags,
    value: Buffer.from(e.value).toString('base64'),
  }));
  ctx.io.stdout.write(`${JSON.stringify(exported, null, '\t')}\n`);
  return exitCodes.ok;
}

async function kvImport(
  ctx: CliContext,
  options: { client: ConclaveClient; file: string; flags: ImportFlags },
): Promise<ExitCode> {
  const { client, flags } = options;
  const text =
    options.file === '-'
      ? await readAll(ctx.io.stdin, { bytesMax: inputBytesMax, what: 'stdin' })
      : await readInputFile(ctx.io, options.file.replace(/^@/, ''));
  const prefix = flags.prefix ?? '';
  const entries = parseExport(text.toString('utf8')).map((e) => ({ ...e, key: `${prefix}${e.key}` }));
  const stats = { transactions: 0, puts: 0 };
  for (const batch of await batchesOf(client, entries)) {
    if (batch.length > 1 && (await importTxn(client, batch))) stats.transactions += 1;
    else {
      for (const entry of batch)
        await client.kvPut({ key: entry.key, value: entry.value, flags: entry.flags });
      stats.puts += batch.length;
    }
    if (flags.json !== true) ctx.io.stdout.write(batch.map((e) => `Imported: ${e.key}\n`).join(''));
  }
  if (flags.json === true) printJson(ctx.io, { imported: entries.length, ...stats });
  return exitCodes.ok;
}

interface ImportEntry {
  readonly key: string;
  readonly flags: number;
  readonly value: Buffer;
}

/** A `kv export` document, checked entry by entry. */
export function parseExport(text: string): ImportEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usageError(`the import is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!Array.isArray(parsed)) throw usageError('the import must be a JSON array of {key, flags, value}');
  if (parsed.length > importEntriesMax)
    throw usageError(`the import has more than ${importEntriesMax} entries`);
  return parsed.map((item: unknown, i) => {
    const where = `entry ${i}`;
    if (typeof item !== 'object' || item === null) throw usageError(`${where} is not an object`);
    const { key, flags = 0, value = '' } = item as Record<string, unknown>;
    if (typeof key !== 'string' || key === '') throw usageError(`${where}: key must be a non-empty string`);
    if (typeof flags !== 'number' || !Number.isSafeInteger(flags) || flags < 0) {
      throw usageError(`${where}: flags must be a non-negative integer`);
    }
    if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw usageError(`${where}: value must be base64`);
    }
    return { key, flags, value: Buffer.from(value, 'base64') };
  });
}

/**
 * Entries in batches that one transaction can write: same Raft group, bounded count and
 * bytes, input order kept within a group (so a repeated key's last value wins). Without
 * the group count (a server that is not Conclave) every entry is its own batch.
 */
async function batchesOf(client: ConclaveClient, entries: readonly ImportEntry[]): Promise<ImportEntry[][]> {
  const groupCount = await groupCountOf(client);
  if (groupCount === null) return entries.map((e) => [e]);
  const open = new Map<number, { entries: ImportEntry[]; bytes: number }>();
  const batches: ImportEntry[][] = [];
  for (const entry of entries) {
    const groupId = groupOfKey({ key: entry.key, groupCount });
    let batch = open.get(groupId);
    const full =
      batch !== undefined &&
      (batch.entries.length >= importBatchOpsMax ||
        batch.bytes + entry.value.byteLength > importBatchValueBytesMax);
    if (batch === undefined || full) {
      batch = { entries: [], bytes: 0 };
      open.set(groupId, batch);
      batches.push(batch.entries);
    }
    batch.entries.push(entry);
    batch.bytes += entry.value.byteLength;
  }
  return batches;
}

async function groupCountOf(client: ConclaveClient): Promise<number | null> {
  try {
    const self = await client.agentSelf();
    return self.groups.length > 0 ? self.groups.length : null;
  } catch (error) {
    // A server without Conclave's agent/self (Consul) answers 404 or another shape.
    const unreachable =
      !(error instanceof ConclaveClientError) ||
      error.code === 'CONNECTION_FAILED' ||
      error.code === 'TIMEOUT';
    if (unreachable) throw error;
    return null;
  }
}

/** Codes on which a batch falls back to one PUT per entry. */
const fallbackCodes = new Set(['TXN_CROSS_GROUP', 'TXN_TOO_LARGE', 'VALUE_TOO_LARGE']);

/** Write a batch in one transaction; false when the server refused it as a transaction. */
async function importTxn(client: ConclaveClient, batch: readonly ImportEntry[]): Promise<boolean> {
  try {
    const outcome = await client.txn(
      batch.map((e) => ({ verb: 'set', key: e.key, value: e.value, flags: e.flags })),
    );
    if (!outcome.ok) {
      const what = outcome.errors.map((e) => `op ${e.opIndex}: ${e.what}`).join('; ');
      throw new ConclaveClientError({
        code: 'BAD_RESPONSE',
        message: `an import transaction failed: ${what}`,
      });
    }
    return true;
  } catch (error) {
    if (error instanceof ConclaveClientError && fallbackCodes.has(error.code)) return false;
    throw error;
  }
}
