/**
 * Everything a client command touches outside itself, so a test can run a command
 * in-process with its own argv, environment, streams and signals, and read its exit code.
 */

/** Exit codes of the client commands (documented in README.md). */
export const exitCodes = {
  ok: 0,
  /** The key does not exist, a cas / acquire / release did not apply, or a lock was lost. */
  failed: 1,
  /** The command line is wrong, or the server refused the request as malformed (400). */
  usage: 2,
  /** The server failed, or could not be reached or understood. */
  error: 3,
} as const;

export type ExitCode = number;

export interface TextSink {
  write(chunk: string | Uint8Array): unknown;
}

export type ForwardedSignal = 'SIGINT' | 'SIGTERM';

/** Where SIGINT and SIGTERM arrive from (the process, or a test's EventEmitter). */
export interface SignalSource {
  on(signal: ForwardedSignal, listener: () => void): unknown;
  off(signal: ForwardedSignal, listener: () => void): unknown;
}

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths (`@file`, import files) resolve against this directory. */
  readonly cwd: string;
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly stdin: AsyncIterable<Uint8Array | string>;
  /** A terminal on stdin: `lock` then keeps its command in the terminal's process group. */
  readonly stdinIsTty: boolean;
  /**
   * `lock` gives its command this process's stdio when true; otherwise it pipes the
   * command's output to `stdout` and `stderr` (and gives it no stdin).
   */
  readonly inheritStdio: boolean;
  readonly signals: SignalSource;
}

export function processIo(): CliIo {
  return {
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    stdinIsTty: process.stdin.isTTY === true,
    inheritStdio: true,
    signals: process,
  };
}
