import type { ConclaveClient } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseNatural,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
  valueArgument,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';

interface PutFlags extends ServerFlags {
  readonly cas?: string;
  readonly flags?: string;
  readonly acquire?: string;
  readonly release?: string;
}

interface DeleteFlags extends ServerFlags {
  readonly recurse?: boolean;
  readonly cas?: string;
}

export function registerKvWrite(kv: Command, ctx: CliContext): void {
  const put = kv
    .command('put')
    .description('set a key')
    .argument('<key>', 'the key')
    .argument('[value]', 'the value; "-" reads it from stdin, "@file" from a file (default: empty)')
    .option('--cas <index>', 'write only if the key is at this ModifyIndex (0: only if it does not exist)')
    .option('--flags <n>', 'an unsigned integer stored with the value, for applications')
    .option('--acquire <session>', 'write and lock the key for this session, if no other session holds it')
    .option('--release <session>', 'write and unlock the key, if this session holds it');
  serverOptions(put, { json: true }).action((key: string, value: string | undefined, flags: PutFlags) =>
    runWithClient(ctx, flags, (client) => kvPut(ctx, { client, key, value, flags })),
  );

  const del = kv
    .command('delete')
    .description('delete a key, or every key under a prefix')
    .argument('<key>', 'the key (with --recurse, the prefix)')
    .option('--recurse', 'delete every key that starts with <key>')
    .option('--cas <index>', 'delete only if the key is at this ModifyIndex');
  serverOptions(del, { json: true }).action((key: string, flags: DeleteFlags) =>
    runWithClient(ctx, flags, (client) => kvDelete(ctx, { client, key, flags })),
  );
}

async function kvPut(
  ctx: CliContext,
  options: { client: ConclaveClient; key: string; value: string | undefined; flags: PutFlags },
): Promise<ExitCode> {
  const { client, key, flags } = options;
  const conditions = [flags.cas, flags.acquire, flags.release].filter((c) => c !== undefined);
  if (conditions.length > 1) throw usageError('--cas, --acquire and --release cannot be combined');
  const cas = parseNatural(flags.cas, '--cas');
  const valueFlags = parseNatural(flags.flags, '--flags');
  const value = await valueArgument(ctx, options.value);
  const written = await client.kvPut({
    key,
    value,
    ...(valueFlags === undefined ? {} : { flags: valueFlags }),
    ...(cas === undefined ? {} : { cas }),
    ...(flags.acquire === undefined ? {} : { acquire: flags.acquire }),
    ...(flags.release === undefined ? {} : { release: flags.release }),
  });
  if (flags.json === true) printJson(ctx.io, { key, written });
  if (written) {
    if (flags.json !== true) ctx.io.stdout.write(`${putSuccess(flags)}${key}\n`);
    return exitCodes.ok;
  }
  ctx.io.stderr.write(`Error! Did not write to ${key}: ${putFailure(flags)}\n`);
  return exitCodes.failed;
}

function putSuccess(flags: PutFlags): string {
  if (flags.acquire !== undefined) return 'Success! Lock acquired on: ';
  if (flags.release !== undefined) return 'Success! Lock released on: ';
  return 'Success! Data written to: ';
}

function putFailure(flags: PutFlags): string {
  if (flags.acquire !== undefined) return 'the lock is held by another session';
  if (flags.release !== undefined) return 'the session does not hold the lock';
  return `CAS failed (the key is not at ModifyIndex ${flags.cas ?? '?'})`;
}

async function kvDelete(
  ctx: CliContext,
  options: { client: ConclaveClient; key: string; flags: DeleteFlags },
): Promise<ExitCode> {
  const { client, key, flags } = options;
  if (flags.recurse === true && flags.cas !== undefined)
    throw usageError('--recurse and --cas cannot be combined');
  const cas = parseNatural(flags.cas, '--cas');
  const deleted = await client.kvDelete({
    key,
    ...(flags.recurse === true ? { recurse: true } : {}),
    ...(cas === undefined ? {} : { cas }),
  });
  if (flags.json === true) printJson(ctx.io, { key, deleted });
  if (deleted) {
    const what = flags.recurse === true ? 'keys with prefix' : 'key';
    if (flags.json !== true) ctx.io.stdout.write(`Success! Deleted ${what}: ${key}\n`);
    return exitCodes.ok;
  }
  ctx.io.stderr.write(`Error! Did not delete ${key}: CAS failed (the key is not at ModifyIndex ${cas})\n`);
  return exitCodes.failed;
}
