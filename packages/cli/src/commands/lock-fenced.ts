import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { type Conclave, ConclaveClientError, type LockHandle } from '@conclave/client';
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
import { exitCodes } from './io.js';

interface AcquireFlags extends ServerFlags {
  readonly timeout?: string;
}

/** How long one blocking read of the holder waits before asking again, ms. */
const holderWaitMs = 60_000;
/** The pause before reading the holder again after a failed read, ms. */
const holderRetryMs = 1_000;

/** The session name a command's connection opens, for `/v1/session/list`. */
export function sessionName(what: string): string {
  return `conclave ${what}: pid ${process.pid} on ${hostname()}`;
}

/**
 * `lock acquire|holder|release`: the lock primitive (fair, fenced; docs/primitives.md),
 * as subcommands of `lock`, whose own form (`lock <prefix> <command>`) is Consul's KV lock.
 */
export function registerLockPrimitive(lock: Command, ctx: CliContext): void {
  const acquire = lock
    .command('acquire')
    .description(
      'hold the lock primitive <name> while <command> runs, its fence in CONCLAVE_FENCE; exit with its exit code',
    )
    .argument('<name>', 'the lock')
    .argument('<command...>', 'after --: the program and its arguments, passed as they are (no shell)')
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
        const timeoutMs = parseDurationMs(flags.timeout, '--timeout');
        return runHolding(ctx.io, {
          command,
          what: `lock ${name}`,
          timeout: flags.timeout,
          acquire: (signal) => acquireLock({ ctx, cv, name, timeoutMs, signal }),
        });
      },
      { sessionName: sessionName(`lock acquire ${name}`) },
    ),
  );

  const holder = lock
    .command('holder')
    .description('print who holds the lock primitive <name> (session, fence) and who waits')
    .argument('<name>', 'the lock');
  serverOptions(holder, { json: true }).action((name: string, flags: ServerFlags) =>
    runWithConclave(ctx, flags, async (cv) => {
      const h = await cv.lock(name).holder();
      if (flags.json === true) printJson(ctx.io, { name, ...h });
      else {
        ctx.io.stdout.write(
          table([
            ['Lock', name],
            ['Session', h.session ?? '-'],
            ['Fence', h.fence === null ? '-' : String(h.fence)],
            ['Waiters', h.waiters.length === 0 ? '-' : h.waiters.join(', ')],
          ]),
        );
      }
      return exitCodes.ok;
    }),
  );

  const release = lock
    .command('release')
    .description(
      'release the lock primitive <name> held with <fence>, whoever holds it (for operators: a stuck holder)',
    )
    .argument('<name>', 'the lock')
    .argument('<fence>', 'the fence the holder was granted (lock holder prints it)');
  serverOptions(release, { json: true }).action((name: string, fenceText: string, flags: ServerFlags) =>
    runWithConclave(ctx, flags, async (cv) => {
      const fence = parseNatural(fenceText, '<fence>');
      if (fence === undefined || fence === 0) throw usageError('<fence> must be a positive integer');
      // Released by fence, on the wire: the SDK releases only its own session's locks.
      await cv.client.primitive({ kind: 'lock', name, op: 'release', args: { fence } });
      if (flags.json === true) printJson(ctx.io, { name, fence, released: true });
      else ctx.io.stdout.write(`Success! Released lock ${name} (fence ${fence})\n`);
      return exitCodes.ok;
    }),
  );
}

async function acquireLock(options: {
  ctx: CliContext;
  cv: Conclave;
  name: string;
  timeoutMs: number | undefined;
  signal: AbortSignal;
}): Promise<Holding | null> {
  const { ctx, cv, name, timeoutMs, signal } = options;
  const lock = cv.lock(name);
  let handle = await lock.tryAcquire({ signal });
  if (handle === null) {
    const now = await lock.holder({ signal });
    // Released meanwhile, maybe: the acquire then gets it at once, with nothing to tell.
    if (now.session !== null) {
      ctx.io.stderr.write(`Waiting for lock ${name}, held by session ${now.session} (fence ${now.fence})\n`);
    }
    handle =
      timeoutMs === undefined ? await lock.acquire({ signal }) : await lock.acquire({ signal, timeoutMs });
    if (handle === null) return null;
  }
  return holdingOf({ ctx, cv, name, handle });
}

/**
 * The held lock for the command: lost when the session ends (the SDK's handle says so) or
 * when the lock no longer has this fence (an operator released it with `lock release`),
 * which blocking reads of the holder find out.
 */
function holdingOf(options: { ctx: CliContext; cv: Conclave; name: string; handle: LockHandle }): Holding {
  const { ctx, cv, name, handle } = options;
  const stop = new AbortController();
  const lost = new AbortController();
  const lose = (reason: unknown) => {
    if (!stop.signal.aborted) lost.abort(reason);
  };
  handle.signal.addEventListener('abort', () => lose(handle.signal.reason), { once: true });
  void followHolder({ cv, name, fence: handle.fence, signal: stop.signal }).then(
    (reason) => {
      if (reason !== null) lose(new Error(reason));
    },
    // Not an expected failure: stop the command rather than run it unguarded.
    (error: unknown) => lose(error),
  );
  return {
    env: { CONCLAVE_LOCK: name, CONCLAVE_FENCE: String(handle.fence), CONCLAVE_SESSION: handle.session },
    lost: lost.signal,
    async release() {
      stop.abort();
      await releaseQuietly(ctx.io, {
        what: `lock ${name} (fence ${handle.fence})`,
        release: () => handle.release(),
        lost: () => lost.signal.aborted || handle.lost,
      });
    },
  };
}

/**
 * Blocking reads of the lock's holder until it no longer has `fence` (what happened then)
 * or `signal` aborts (null). A failed read is retried: the session's renewal decides when
 * an unreachable server means the lock is lost.
 */
async function followHolder(options: {
  cv: Conclave;
  name: string;
  fence: number;
  signal: AbortSignal;
}): Promise<string | null> {
  const { cv, name, fence, signal } = options;
  let index = 0;
  while (!signal.aborted) {
    try {
      const answer = await cv.client.primitive({
        kind: 'lock',
        name,
        op: 'holder',
        consistency: 'consistent',
        index,
        waitMs: holderWaitMs,
        signal,
      });
      const holder = answer.result as { session?: unknown; fence?: unknown } | null;
      if (holder?.fence !== fence) {
        return holder?.session === null || holder?.session === undefined
          ? `lock ${name} was released`
          : `lock ${name} is held by session ${String(holder.session)} with fence ${String(holder.fence)}`;
      }
      index = answer.index;
    } catch (error) {
      if (signal.aborted) return null;
      if (!(error instanceof ConclaveClientError)) throw error;
      await delay(holderRetryMs, undefined, { signal }).catch(() => undefined);
    }
  }
  return null;
}
