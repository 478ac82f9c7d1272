import { bytesCodec, type Conclave } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseDurationMs,
  parseNatural,
  printJson,
  reportRefusal,
  runWithConclave,
  type ServerFlags,
  serverOptions,
  valueArgument,
  valueText,
} from './common.js';
import { table, versionedJson } from './format.js';
import { type ExitCode, exitCodes } from './io.js';

/** The options of a write with a precondition and a time to live. */
export interface WriteFlags extends ServerFlags {
  readonly ifVersion?: string;
  readonly ttl?: string;
}

interface GetFlags extends ServerFlags {
  readonly detailed?: boolean;
}

export const valueArgumentHelp = 'the value (text); "-" reads it from stdin, "@file" from a file';
export const ifVersionHelp = 'write only if the version is n (0: only if never written); else exit 1';
export const ttlHelp = 'delete it this long after the write unless written again (1s to 24h), e.g. 30s';

/** `--if-version` and `--ttl` as the SDK takes them. */
export function writeOptions(flags: WriteFlags): { ifVersion?: number; ttlMs?: number } {
  const ifVersion = parseNatural(flags.ifVersion, '--if-version');
  const ttlMs = parseDurationMs(flags.ttl, '--ttl');
  return {
    ...(ifVersion === undefined ? {} : { ifVersion }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
  };
}

/**
 * `value get|set|delete <name>`: a register holding one value or none. Values are bytes on
 * the server and text here: printed as they are, written from the argument, stdin or a file.
 */
export function registerValue(value: Command, ctx: CliContext): void {
  value.description('read and write registers: one value each (or none), with a version');
  const run = (flags: ServerFlags, body: (cv: Conclave) => Promise<ExitCode>) =>
    runWithConclave(ctx, flags, body);
  const handle = (cv: Conclave, name: string) => cv.value(name, { codec: bytesCodec });

  const get = value
    .command('get')
    .description('print the value; exit 1 if it is not set')
    .argument('<name>')
    .option('--detailed', 'print the name, value and version, one per line');
  serverOptions(get, { json: true }).action((name: string, flags: GetFlags) =>
    run(flags, async (cv) => {
      const got = await handle(cv, name).get();
      if (got === null) {
        if (flags.json === true) printJson(ctx.io, null);
        ctx.io.stderr.write(`Error! Value ${name} is not set\n`);
        return exitCodes.failed;
      }
      if (flags.json === true) printJson(ctx.io, { name, ...versionedJson(got) });
      else if (flags.detailed === true) {
        ctx.io.stdout.write(
          table([
            ['Name', name],
            ['Value', valueText(got.value)],
            ['Version', String(got.version)],
          ]),
        );
      } else {
        ctx.io.stdout.write(got.value);
        ctx.io.stdout.write('\n');
      }
      return exitCodes.ok;
    }),
  );

  const set = value
    .command('set')
    .description('set the value')
    .argument('<name>')
    .argument('<value>', valueArgumentHelp)
    .option('--if-version <n>', ifVersionHelp)
    .option('--ttl <duration>', ttlHelp);
  serverOptions(set, { json: true }).action((name: string, text: string, flags: WriteFlags) =>
    run(flags, async (cv) => {
      const options = writeOptions(flags);
      const bytes = await valueArgument(ctx, text);
      const written = await handle(cv, name).set(bytes, { ...options, session: false });
      if (flags.json === true) printJson(ctx.io, { name, version: written.version });
      else ctx.io.stdout.write(`Success! Value written to: ${name} (version ${written.version})\n`);
      return exitCodes.ok;
    }),
  );

  const del = value
    .command('delete')
    .description('delete the value (the register stays, empty)')
    .argument('<name>')
    .option('--if-version <n>', 'delete only if the version is n; else exit 1');
  serverOptions(del, { json: true }).action((name: string, flags: WriteFlags) =>
    run(flags, async (cv) => {
      const { ifVersion } = writeOptions(flags);
      const deleted = await handle(cv, name).delete({
        session: false,
        ...(ifVersion === undefined ? {} : { ifVersion }),
      });
      if (!deleted && ifVersion !== undefined) {
        if (flags.json === true) printJson(ctx.io, { name, deleted });
        return reportRefusal(ctx.io, {
          code: 'VERSION_MISMATCH',
          message: `Did not delete value ${name}: it is not at version ${ifVersion}`,
        });
      }
      if (flags.json === true) printJson(ctx.io, { name, deleted });
      else ctx.io.stdout.write(`Success! Deleted value: ${name}\n`);
      return exitCodes.ok;
    }),
  );
}
