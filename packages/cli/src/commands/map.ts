import { bytesCodec, type Conclave } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
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
import { ifVersionHelp, ttlHelp, valueArgumentHelp, type WriteFlags, writeOptions } from './value.js';

interface GetFlags extends ServerFlags {
  readonly detailed?: boolean;
}

/**
 * `map get|put|insert|update|remove|size|entries|clear <name> [key] [value]`: a map of
 * string keys to values (text here), spread over the groups by key, each entry versioned.
 */
export function registerMap(map: Command, ctx: CliContext): void {
  map.description('read and write maps: string keys to values, each entry with its own version');
  const run = (flags: ServerFlags, body: (cv: Conclave) => Promise<ExitCode>) =>
    runWithConclave(ctx, flags, body);
  const handle = (cv: Conclave, name: string) => cv.map(name, { codec: bytesCodec });
  const out = ctx.io.stdout;

  const get = map
    .command('get')
    .description("print the key's value; exit 1 if the map has no such key")
    .argument('<name>')
    .argument('<key>')
    .option('--detailed', 'print the key, value and version, one per line');
  serverOptions(get, { json: true }).action((name: string, key: string, flags: GetFlags) =>
    run(flags, async (cv) => {
      const got = await handle(cv, name).get(key);
      if (got === null) {
        if (flags.json === true) printJson(ctx.io, null);
        ctx.io.stderr.write(`Error! Map ${name} has no key ${key}\n`);
        return exitCodes.failed;
      }
      if (flags.json === true) printJson(ctx.io, { name, key, ...versionedJson(got) });
      else if (flags.detailed === true) {
        out.write(
          table([
            ['Map', name],
            ['Key', key],
            ['Value', valueText(got.value)],
            ['Version', String(got.version)],
          ]),
        );
      } else {
        out.write(got.value);
        out.write('\n');
      }
      return exitCodes.ok;
    }),
  );

  const writes = [
    ['put', 'set the key, present or not', 'Put'],
    ['insert', 'add the key if it is absent; exit 1 if present', 'Inserted'],
    ['update', 'replace the key if it is present; exit 1 if absent', 'Updated'],
  ] as const;
  for (const [op, description, done] of writes) {
    const command = map
      .command(op)
      .description(description)
      .argument('<name>')
      .argument('<key>')
      .argument('<value>', valueArgumentHelp);
    if (op !== 'insert') command.option('--if-version <n>', ifVersionHelp);
    command.option('--ttl <duration>', ttlHelp);
    serverOptions(command, { json: true }).action(
      (name: string, key: string, text: string, flags: WriteFlags) =>
        run(flags, async (cv) => {
          const options = { ...writeOptions(flags), session: false };
          const bytes = await valueArgument(ctx, text);
          const m = handle(cv, name);
          let version: number | null;
          if (op === 'put') version = (await m.put(key, bytes, options)).version;
          else if (op === 'update') version = (await m.update(key, bytes, options))?.version ?? null;
          else version = await m.insert(key, bytes, options);
          if (version === null) {
            if (flags.json === true) printJson(ctx.io, { name, key, written: false });
            return op === 'insert'
              ? reportRefusal(ctx.io, {
                  code: 'VERSION_MISMATCH',
                  message: `Did not insert: map ${name} has the key ${key} already`,
                  advice: 'use put to replace the value, or update to replace it only if present',
                })
              : reportRefusal(ctx.io, {
                  code: 'KEY_NOT_FOUND',
                  message: `Did not update: map ${name} has no key ${key}`,
                  advice: 'use put to write the key whether present or not, or insert to add it',
                });
          }
          if (flags.json === true) printJson(ctx.io, { name, key, written: true, version });
          else out.write(`Success! ${done} ${key} in map ${name} (version ${version})\n`);
          return exitCodes.ok;
        }),
    );
  }

  const remove = map
    .command('remove')
    .description('remove the key (nothing to do if absent)')
    .argument('<name>')
    .argument('<key>')
    .option('--if-version <n>', 'remove only if the version is n; else exit 1');
  serverOptions(remove, { json: true }).action((name: string, key: string, flags: WriteFlags) =>
    run(flags, async (cv) => {
      const { ifVersion } = writeOptions(flags);
      const previous = await handle(cv, name).remove(key, {
        session: false,
        ...(ifVersion === undefined ? {} : { ifVersion }),
      });
      if (flags.json === true) printJson(ctx.io, { name, key, removed: previous !== null });
      else if (previous === null) out.write(`Nothing to remove: map ${name} has no key ${key}\n`);
      else out.write(`Success! Removed ${key} from map ${name}\n`);
      return exitCodes.ok;
    }),
  );

  const size = map.command('size').description('print how many entries the map has').argument('<name>');
  serverOptions(size, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const count = await handle(cv, name).size();
      if (flags.json === true) printJson(ctx.io, { name, size: count });
      else out.write(`${count}\n`);
      return exitCodes.ok;
    }),
  );

  const entries = map
    .command('entries')
    .description('print every entry as key:value lines, group after group (no snapshot)')
    .argument('<name>');
  serverOptions(entries, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const all: { key: string; value: string; version: number }[] = [];
      for await (const entry of handle(cv, name).entries()) {
        if (flags.json === true) all.push({ key: entry.key, ...versionedJson(entry) });
        else out.write(`${entry.key}:${valueText(entry.value)}\n`);
      }
      if (flags.json === true) printJson(ctx.io, all);
      return exitCodes.ok;
    }),
  );

  const clear = map.command('clear').description('remove every entry').argument('<name>');
  serverOptions(clear, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const removed = await handle(cv, name).clear({ session: false });
      if (flags.json === true) printJson(ctx.io, { name, removed });
      else out.write(`Success! Cleared map ${name} (${removed} removed)\n`);
      return exitCodes.ok;
    }),
  );
}
