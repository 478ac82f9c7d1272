import { hostname } from 'node:os';
import type { ConclaveClient } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseNatural,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { type ExitCode, exitCodes, type ForwardedSignal } from './io.js';
import { type RunningCommand, startCommand } from './lock-child.js';
import { LockHolder } from './lock-holder.js';

interface LockFlags extends ServerFlags {
  readonly timeoutMs?: string;
}

const signalNumbers: Readonly<Record<ForwardedSignal, number>> = { SIGINT: 2, SIGTERM: 15 };

/** `lock`, on the (top-level) command given. */
export function registerLock(command: Command, ctx: CliContext): void {
  command
    .description(
      'hold the KV lock <prefix>/.lock while <command> runs (through the shell), as consul lock, ' +
        'and exit with its exit code; or use the fenced lock primitive: acquire, holder, release',
    )
    .argument('<prefix>', 'the lock is the key <prefix>/.lock')
    .argument('<command...>', 'the command; its own options pass through untouched')
    .option(
      '--timeout-ms <ms>',
      'give up (exit 1) if the lock is not acquired within this long (default: wait)',
    )
    // Everything after <prefix> belongs to the command: `conclave lock app node -e ...`.
    .passThroughOptions();
  serverOptions(command, { json: false }).action((prefix: string, words: string[], flags: LockFlags) =>
    runWithClient(ctx, flags, (client) => lock(ctx, { client, prefix, command: commandLine(words), flags })),
  );
}

/** The words after the prefix, joined for the shell; a leading `--` only separates them. */
function commandLine(words: readonly string[]): string {
  const command = words[0] === '--' ? words.slice(1) : words;
  if (command.length === 0) throw usageError('missing the command to run under the lock');
  return command.join(' ');
}

async function lock(
  ctx: CliContext,
  options: { client: ConclaveClient; prefix: string; command: string; flags: LockFlags },
): Promise<ExitCode> {
  const { io } = ctx;
  const { client, prefix } = options;
  const timeoutMs = parseNatural(options.flags.timeoutMs, '--timeout-ms');
  if (prefix.replace(/\/+$/, '') === '') throw usageError('the lock prefix must not be empty');
  const key = `${prefix.replace(/\/+$/, '')}/.lock`;

  // A signal before the command runs abandons the wait; once it runs, the command gets it.
  let child: RunningCommand | null = null;
  let interrupted: ForwardedSignal | null = null;
  const interrupt = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = () => {
      if (child !== null) return child.forward(signal);
      interrupted ??= signal;
      interrupt.abort();
    };
    io.signals.on(signal, handler);
    return { signal, handler };
  });
  let holder: LockHolder | null = null;
  try {
    holder = await LockHolder.create({
      client,
      key,
      value: `conclave lock: pid ${process.pid} on ${hostname()}`,
      name: `conclave lock ${key}`,
    });
    const signals = [interrupt.signal, ...(timeoutMs === undefined ? [] : [AbortSignal.timeout(timeoutMs)])];
    const acquired = await holder.acquire({
      signal: AbortSignal.any(signals),
      onWaiting: (session) => io.stderr.write(`Waiting for the lock on ${key}, held by session ${session}\n`),
    });
    if (!acquired) {
      if (interrupted !== null) return 128 + signalNumbers[interrupted];
      io.stderr.write(`Error! Did not acquire the lock on ${key} within ${timeoutMs} ms\n`);
      return exitCodes.failed;
    }
    const running = startCommand(io, { command: options.command, env: { ...io.env } });
    child = running;
    let lost = false;
    holder.watch((reason) => {
      lost = true;
      io.stderr.write(`Error! Lost the lock on ${key} (${reason}); stopping the command\n`);
      running.kill();
    });
    const code = await running.exited;
    return lost ? exitCodes.failed : code;
  } finally {
    for (const { signal, handler } of handlers) io.signals.off(signal, handler);
    await holder?.close();
  }
}
