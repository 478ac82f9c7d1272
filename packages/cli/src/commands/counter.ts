import type { Conclave } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseInteger,
  printJson,
  runWithConclave,
  type ServerFlags,
  serverOptions,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';

interface ByFlags extends ServerFlags {
  readonly by?: string;
}

/**
 * `counter get|set|incr|decr|cas <name>`: a counter primitive (docs/primitives.md). Every
 * command prints the counter's value after it; writes carry no session, so each applies
 * at most once (a failure that leaves the outcome unknown says so: read before retrying).
 */
export function registerCounter(counter: Command, ctx: CliContext): void {
  counter.description('read and change counters: integers within ±(2^53 - 1), 0 until first written');
  const run = (flags: ServerFlags, body: (cv: Conclave) => Promise<ExitCode>) =>
    runWithConclave(ctx, flags, body);
  const print = (flags: ServerFlags, name: string, value: number) => {
    if (flags.json === true) printJson(ctx.io, { name, value });
    else ctx.io.stdout.write(`${value}\n`);
    return exitCodes.ok;
  };

  const get = counter.command('get').description("print the counter's value").argument('<name>');
  serverOptions(get, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => print(flags, name, await cv.counter(name).get())),
  );

  const set = counter
    .command('set')
    .description('set the counter to <value>')
    .argument('<name>')
    .argument('<value>', 'an integer (negative ones too)');
  serverOptions(set, { json: true }).action((name: string, text: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const value = parseInteger(text, '<value>');
      await cv.counter(name).set(value, { session: false });
      return print(flags, name, value);
    }),
  );

  for (const [op, verb] of [
    ['incr', 'add'],
    ['decr', 'subtract'],
  ] as const) {
    const command = counter
      .command(op)
      .description(`${verb} 1 (or --by n); print the new value`)
      .argument('<name>')
      .option('--by <n>', `the integer to ${verb} (default 1)`);
    serverOptions(command, { json: true }).action((name: string, flags: ByFlags) =>
      run(flags, async (cv) => {
        const delta = flags.by === undefined ? 1 : parseInteger(flags.by, '--by');
        const handle = cv.counter(name);
        const value =
          op === 'incr'
            ? await handle.increment(delta, { session: false })
            : await handle.decrement(delta, { session: false });
        return print(flags, name, value);
      }),
    );
  }

  const cas = counter
    .command('cas')
    .description('set the counter to <update> if it is <expect>; exit 1 (nothing written) if not')
    .argument('<name>')
    .argument('<expect>', 'the value the counter must have')
    .argument('<update>', 'the value to set');
  serverOptions(cas, { json: true }).action(
    (name: string, expectText: string, updateText: string, flags: ServerFlags) =>
      run(flags, async (cv) => {
        const expect = parseInteger(expectText, '<expect>');
        const update = parseInteger(updateText, '<update>');
        const ok = await cv.counter(name).compareAndSet(expect, update, { session: false });
        if (flags.json === true) printJson(ctx.io, ok ? { name, ok, value: update } : { name, ok });
        if (!ok) {
          ctx.io.stderr.write(`Error! Did not set counter ${name}: its value is not ${expect}\n`);
          return exitCodes.failed;
        }
        if (flags.json !== true) ctx.io.stdout.write(`${update}\n`);
        return exitCodes.ok;
      }),
  );
}
