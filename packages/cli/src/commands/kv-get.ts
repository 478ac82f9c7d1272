import type { ConclaveClient } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
  valueText,
} from './common.js';
import { detailedText, entryJson } from './format.js';
import { type ExitCode, exitCodes } from './io.js';

interface GetFlags extends ServerFlags {
  readonly recurse?: boolean;
  readonly keys?: boolean;
  readonly separator?: string;
  readonly detailed?: boolean;
}

export function registerKvGet(kv: Command, ctx: CliContext): void {
  const command = kv
    .command('get')
    .description('print the value of a key, or the entries / keys under a prefix')
    .argument('[key]', 'the key (or, with --recurse or --keys, the prefix; default all keys)')
    .option('--recurse', 'print every entry under the prefix, as key:value lines')
    .option('--keys', 'print the keys under the prefix, rolled up at --separator')
    .option('--separator <sep>', 'with --keys, roll keys up at this string ("" for none)', '/')
    .option('--detailed', 'print every field of each entry, not just the value');
  serverOptions(command, { json: true }).action((key: string | undefined, flags: GetFlags) =>
    runWithClient(ctx, flags, (client) => kvGet(ctx, { client, key, flags })),
  );
}

async function kvGet(
  ctx: CliContext,
  options: { client: ConclaveClient; key: string | undefined; flags: GetFlags },
): Promise<ExitCode> {
  const { client, flags } = options;
  const { io } = ctx;
  if (flags.keys === true) {
    // Consul's default separator rolls a tree up to its first level; "" lists every key.
    const separator = flags.separator ?? '/';
    const { value: keys } = await client.kvKeys(options.key ?? '', { separator });
    if (flags.json === true) printJson(io, keys);
    else io.stdout.write(keys.map((k) => `${k}\n`).join(''));
    return exitCodes.ok;
  }
  if (flags.recurse === true) {
    const { value: entries } = await client.kvList(options.key ?? '');
    if (flags.json === true) printJson(io, entries.map(entryJson));
    else if (flags.detailed === true) io.stdout.write(entries.map(detailedText).join('\n'));
    else io.stdout.write(entries.map((e) => `${e.key}:${valueText(e.value)}\n`).join(''));
    return exitCodes.ok;
  }
  if (options.key === undefined || options.key === '') throw usageError('missing the key to get');
  const { value: entry } = await client.kvGet(options.key);
  if (entry === null) {
    if (flags.json === true) printJson(io, null);
    io.stderr.write(`Error! No key exists at: ${options.key}\n`);
    return exitCodes.failed;
  }
  if (flags.json === true) printJson(io, entryJson(entry));
  else if (flags.detailed === true) io.stdout.write(detailedText(entry));
  else {
    io.stdout.write(entry.value);
    io.stdout.write('\n');
  }
  return exitCodes.ok;
}
