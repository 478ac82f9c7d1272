import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { ConclaveError } from '@conclave/protocol';
import type { CliIo, ExitCode, ForwardedSignal } from './io.js';

/** After SIGTERM, a command that has not exited within this long is sent SIGKILL. */
export const killGraceMs = 5_000;
/** After the command exits, how long its output pipes may take to close. */
const pipeDrainMs = 1_000;

export interface RunningCommand {
  /** Pass a signal on to the command. */
  forward(signal: ForwardedSignal): void;
  /** SIGTERM now, SIGKILL after killGraceMs if it still runs. */
  kill(): void;
  /** The exit code, as a shell reports it: 128 + the signal's number when killed by one. */
  readonly exited: Promise<ExitCode>;
}

/**
 * Run `command`: a string through the shell (`conclave lock`, as `consul lock` does), or a
 * list of words as the program and its arguments, each passed as it is (`lock acquire`,
 * `semaphore acquire`, `election enter`, as `flock` and `etcdctl lock` do). Without a
 * terminal on stdin it gets its own process group, and signals go to the whole group:
 * `sh -c` does not always exec its command, so signalling the shell alone could leave the
 * real command running without the lock. With a terminal it stays in the terminal's
 * foreground group so it can read it (a background group would be stopped by SIGTTIN);
 * Ctrl-C then reaches it from the terminal too.
 */
export function startCommand(
  io: CliIo,
  options: { command: string | readonly string[]; env: NodeJS.ProcessEnv },
): RunningCommand {
  const ownGroup = !io.stdinIsTty;
  const spawnOptions: SpawnOptions = {
    cwd: io.cwd,
    env: options.env,
    detached: ownGroup,
    stdio: io.inheritStdio ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  };
  const { command } = options;
  const child: ChildProcess =
    typeof command === 'string'
      ? spawn(command, { ...spawnOptions, shell: true })
      : spawn(command[0] ?? '', command.slice(1), { ...spawnOptions, shell: false });
  child.stdout?.on('data', (chunk: Buffer) => io.stdout.write(chunk));
  child.stderr?.on('data', (chunk: Buffer) => io.stderr.write(chunk));
  const send = (signal: NodeJS.Signals) => signalChild(child, { signal, ownGroup });
  let killTimer: NodeJS.Timeout | null = null;
  const exited = exitOf(child).finally(() => {
    if (killTimer !== null) clearTimeout(killTimer);
  });
  return {
    forward: send,
    kill() {
      send('SIGTERM');
      killTimer ??= setTimeout(() => send('SIGKILL'), killGraceMs);
    },
    exited,
  };
}

function signalChild(child: ChildProcess, options: { signal: NodeJS.Signals; ownGroup: boolean }): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (options.ownGroup) process.kill(-child.pid, options.signal);
    else child.kill(options.signal);
  } catch (error) {
    // The group may have exited between the check and the kill.
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

async function exitOf(child: ChildProcess): Promise<ExitCode> {
  // Listened for from the start: 'close' may follow 'exit' within the same turn.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once('error', (error) =>
        reject(new ConclaveError({ code: 'USAGE', message: `cannot run the command: ${error.message}` })),
      );
      child.once('exit', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal }));
    },
  );
  // Bounded: a background process the command started may hold its output pipes open.
  const drainTimer = new AbortController();
  await Promise.race([
    closed,
    delay(pipeDrainMs, undefined, { signal: drainTimer.signal }).catch(() => undefined),
  ]);
  drainTimer.abort();
  if (code !== null) return code;
  return 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
}
