import type { Conclave } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseDurationMs,
  printJson,
  runWithConclave,
  type ServerFlags,
  serverOptions,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';
import { ttlHelp } from './value.js';

interface AddFlags extends ServerFlags {
  readonly ttl?: string;
}

/** `set add|remove|contains|size|elements|clear <name> [element]`: a set of strings. */
export function registerSet(set: Command, ctx: CliContext): void {
  set.description('read and write sets of strings');
  const run = (flags: ServerFlags, body: (cv: Conclave) => Promise<ExitCode>) =>
    runWithConclave(ctx, flags, body);
  const out = ctx.io.stdout;

  const add = set
    .command('add')
    .description('add the element (nothing to do if present)')
    .argument('<name>')
    .argument('<element>')
    .option('--ttl <duration>', ttlHelp);
  serverOptions(add, { json: true }).action((name: string, element: string, flags: AddFlags) =>
    run(flags, async (cv) => {
      const ttlMs = parseDurationMs(flags.ttl, '--ttl');
      const added = await cv
        .set(name)
        .add(element, { session: false, ...(ttlMs === undefined ? {} : { ttlMs }) });
      if (flags.json === true) printJson(ctx.io, { name, element, added });
      else if (added) out.write(`Success! Added ${element} to set ${name}\n`);
      else out.write(`Set ${name} has ${element} already\n`);
      return exitCodes.ok;
    }),
  );

  const remove = set
    .command('remove')
    .description('remove the element (nothing to do if absent)')
    .argument('<name>')
    .argument('<element>');
  serverOptions(remove, { json: true }).action((name: string, element: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const removed = await cv.set(name).remove(element, { session: false });
      if (flags.json === true) printJson(ctx.io, { name, element, removed });
      else if (removed) out.write(`Success! Removed ${element} from set ${name}\n`);
      else out.write(`Nothing to remove: set ${name} has no element ${element}\n`);
      return exitCodes.ok;
    }),
  );

  const contains = set
    .command('contains')
    .description('print true or false; exit 0 if the set has the element, 1 if not')
    .argument('<name>')
    .argument('<element>');
  serverOptions(contains, { json: true }).action((name: string, element: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const has = await cv.set(name).contains(element);
      if (flags.json === true) printJson(ctx.io, { name, element, contains: has });
      else out.write(`${has}\n`);
      return has ? exitCodes.ok : exitCodes.failed;
    }),
  );

  const size = set.command('size').description('print how many elements the set has').argument('<name>');
  serverOptions(size, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const count = await cv.set(name).size();
      if (flags.json === true) printJson(ctx.io, { name, size: count });
      else out.write(`${count}\n`);
      return exitCodes.ok;
    }),
  );

  const elements = set
    .command('elements')
    .description('print every element, one a line, group after group (no snapshot)')
    .argument('<name>');
  serverOptions(elements, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const all: string[] = [];
      for await (const element of cv.set(name).elements()) {
        if (flags.json === true) all.push(element);
        else out.write(`${element}\n`);
      }
      if (flags.json === true) printJson(ctx.io, all);
      return exitCodes.ok;
    }),
  );

  const clear = set.command('clear').description('remove every element').argument('<name>');
  serverOptions(clear, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const removed = await cv.set(name).clear({ session: false });
      if (flags.json === true) printJson(ctx.io, { name, removed });
      else out.write(`Success! Cleared set ${name} (${removed} removed)\n`);
      return exitCodes.ok;
    }),
  );
}
