import { ConclaveError } from '@conclave/protocol';
import { usageError } from './common.js';
import { type CliIo, type ExitCode, exitCodes, type ForwardedSignal } from './io.js';
import { type RunningCommand, startCommand } from './lock-child.js';

/** Something held (a lock, permits, a leadership) for a command to run under. */
export interface Holding {
  /** Variables the command gets on top of the environment (the fence, the term, ...). */
  readonly env: Readonly<Record<string, string>>;
  /** Aborts when the hold is lost while the command runs; its reason (an Error) says how. */
  readonly lost: AbortSignal;
  /** Gives it back. Never throws: a hold that cannot be given back ends with the session. */
  release(): Promise<void>;
}

export const signalNumbers: Readonly<Record<ForwardedSignal, number>> = { SIGINT: 2, SIGTERM: 15 };

/**
 * The words after `--`: the program and its arguments, passed on as they are (no shell:
 * `-- sh -c '...'` for one).
 */
export function commandWords(words: readonly string[]): string[] {
  if (words.length === 0) throw usageError('missing the command to run: give it after --');
  return [...words];
}

/**
 * Acquire, run the command while held, give it back; the command's exit code is the
 * result. As `conclave lock` (and `consul lock`) do it:
 * - SIGINT or SIGTERM while waiting abandon the wait (exit 128 + the signal's number);
 *   once the command runs they are forwarded to it, and the hold is given back when it
 *   exits.
 * - `acquire` resolves null when its timeout passed: exit 1.
 * - If the hold is lost while the command runs, the command is stopped (SIGTERM, SIGKILL
 *   after a grace period) and the exit code is 1.
 */
export async function runHolding(
  io: CliIo,
  options: {
    readonly command: readonly string[];
    /** What is held, for messages: `lock "jobs"`. */
    readonly what: string;
    /** The wait's bound as the user gave it, for the message when it passes. */
    readonly timeout: string | undefined;
    readonly acquire: (signal: AbortSignal) => Promise<Holding | null>;
  },
): Promise<ExitCode> {
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
  let holding: Holding | null = null;
  try {
    try {
      holding = await options.acquire(interrupt.signal);
    } catch (error) {
      if (interrupted !== null) return 128 + signalNumbers[interrupted];
      throw error;
    }
    if (interrupted !== null) return 128 + signalNumbers[interrupted];
    if (holding === null) {
      io.stderr.write(`Error! Did not acquire ${options.what} within ${options.timeout ?? '?'}\n`);
      return exitCodes.failed;
    }
    const running = startCommand(io, { command: options.command, env: { ...io.env, ...holding.env } });
    child = running;
    let lost = false;
    const lostSignal = holding.lost;
    const onLost = () => {
      lost = true;
      const reason =
        lostSignal.reason instanceof Error ? lostSignal.reason.message : String(lostSignal.reason);
      io.stderr.write(`Error! Lost ${options.what} (${reason}); stopping the command\n`);
      running.kill();
    };
    if (lostSignal.aborted) onLost();
    else lostSignal.addEventListener('abort', onLost, { once: true });
    try {
      const code = await running.exited;
      return lost ? exitCodes.failed : code;
    } finally {
      lostSignal.removeEventListener('abort', onLost);
    }
  } finally {
    for (const { signal, handler } of handlers) io.signals.off(signal, handler);
    await holding?.release();
  }
}

/** Give a hold back without throwing: a failure is told, and the session's end releases it. */
export async function releaseQuietly(
  io: CliIo,
  options: { what: string; release: () => Promise<void>; lost: () => boolean },
): Promise<void> {
  try {
    await options.release();
  } catch (error) {
    if (!(error instanceof ConclaveError)) throw error;
    // Lost already: told when it was; there is nothing to give back.
    if (options.lost()) return;
    io.stderr.write(
      `Error! Could not release ${options.what}: ${error.message} (${error.code}); it is released when its session ends\n`,
    );
  }
}
