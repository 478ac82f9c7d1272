import type { Conclave } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseDurationMs,
  parseNatural,
  printJson,
  runWithConclave,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { table } from './format.js';
import { commandWords, type Holding, releaseQuietly, runHolding } from './hold-command.js';
import { type ExitCode, exitCodes } from './io.js';
import { sessionName } from './lock-fenced.js';

interface AcquireFlags extends ServerFlags {
  readonly permits?: string;
  readonly timeout?: string;
}

/** `semaphore permits|set-permits|acquire`: the counting semaphore primitive. */
export function registerSemaphore(semaphore: Command, ctx: CliContext): void {
  semaphore.description('read and set semaphores; run a command while holding permits');
  const run = (flags: ServerFlags, body: (cv: Conclave) => Promise<ExitCode>) =>
    runWithConclave(ctx, flags, body);

  const permits = semaphore
    .command('permits')
    .description('print the permits in all, those free now, and how many sessions wait')
    .argument('<name>', 'the semaphore');
  serverOptions(permits, { json: true }).action((name: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const state = await cv.semaphore(name).availablePermits();
      const { available, waiters } = state;
      if (flags.json === true) printJson(ctx.io, { name, permits: state.permits, available, waiters });
      else {
        ctx.io.stdout.write(
          table([
            ['Semaphore', name],
            ['Permits', String(state.permits)],
            ['Available', String(available)],
            ['Waiters', String(waiters)],
          ]),
        );
      }
      return exitCodes.ok;
    }),
  );

  const setPermits = semaphore
    .command('set-permits')
    .description('set the permits in all (lowered below what is held, it takes effect as permits come back)')
    .argument('<name>', 'the semaphore')
    .argument('<permits>', 'a non-negative integer');
  serverOptions(setPermits, { json: true }).action((name: string, text: string, flags: ServerFlags) =>
    run(flags, async (cv) => {
      const count = parseNatural(text, '<permits>') ?? 0;
      await cv.semaphore(name).setPermits(count, { session: false });
      if (flags.json === true) printJson(ctx.io, { name, permits: count });
      else ctx.io.stdout.write(`Success! Semaphore ${name} has ${count} permits\n`);
      return exitCodes.ok;
    }),
  );

  const acquire = semaphore
    .command('acquire')
    .description(
      'hold permits of the semaphore while <command> runs (their number in CONCLAVE_PERMITS); exit with its exit code',
    )
    .argument('<name>', 'the semaphore')
    .argument('<command...>', 'after --: the program and its arguments, passed as they are (no shell)')
    .option('--permits <n>', 'how many permits to hold (default 1)')
    .option(
      '--timeout <duration>',
      'give up (exit 1) if not acquired within this long, e.g. 10s (default: wait)',
    );
  serverOptions(acquire, { json: false }).action((name: string, words: string[], flags: AcquireFlags) =>
    runWithConclave(
      ctx,
      flags,
      async (cv) => {
        const command = commandWords(words);
        const count = parseNatural(flags.permits, '--permits') ?? 1;
        if (count === 0) throw usageError('--permits must be at least 1');
        const timeoutMs = parseDurationMs(flags.timeout, '--timeout');
        return runHolding(ctx.io, {
          command,
          what: `${count} permits of semaphore ${name}`,
          timeout: flags.timeout,
          acquire: (signal) => acquirePermits({ ctx, cv, name, permits: count, timeoutMs, signal }),
        });
      },
      { sessionName: sessionName(`semaphore acquire ${name}`) },
    ),
  );
}

async function acquirePermits(options: {
  ctx: CliContext;
  cv: Conclave;
  name: string;
  permits: number;
  timeoutMs: number | undefined;
  signal: AbortSignal;
}): Promise<Holding | null> {
  const { ctx, cv, name, permits, timeoutMs, signal } = options;
  const semaphore = cv.semaphore(name);
  let handle = await semaphore.tryAcquire({ permits, signal });
  if (handle === null) {
    const state = await semaphore.availablePermits({ signal });
    ctx.io.stderr.write(
      `Waiting for ${permits} permits of semaphore ${name}: ${state.available} of ${state.permits} free, ${state.waiters} waiting\n`,
    );
    handle =
      timeoutMs === undefined
        ? await semaphore.acquire({ permits, signal })
        : await semaphore.acquire({ permits, signal, timeoutMs });
    if (handle === null) return null;
  }
  const held = handle;
  const stop = new AbortController();
  const lost = new AbortController();
  held.signal.addEventListener(
    'abort',
    () => {
      if (!stop.signal.aborted) lost.abort(held.signal.reason);
    },
    { once: true },
  );
  return {
    env: { CONCLAVE_SEMAPHORE: name, CONCLAVE_PERMITS: String(permits), CONCLAVE_SESSION: held.session },
    lost: lost.signal,
    async release() {
      stop.abort();
      await releaseQuietly(ctx.io, {
        what: `${permits} permits of semaphore ${name}`,
        release: () => held.release(),
        lost: () => held.lost,
      });
    },
  };
}
