import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { runCli } from '../index.js';
import type { CliIo, ExitCode } from '../io.js';

/** What one in-process command printed. */
export interface Captured {
  stdout: string;
  stderr: string;
}

/** What an in-process CLI runs with. */
export interface CliOptions {
  /** CONCLAVE_HTTP_ADDR; null leaves it unset (and CONSUL_HTTP_ADDR too, unless in `env`). */
  readonly httpAddr: string | null;
  readonly stdin?: string;
  readonly cwd?: string;
  /** More environment, over the process's own. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * An in-process CLI: its streams are strings, its signals an EventEmitter a test emits
 * on, its stdin the given text, and CONCLAVE_HTTP_ADDR the given server.
 */
export function cli(options: CliOptions) {
  const out: Captured = { stdout: '', stderr: '' };
  const signals = new EventEmitter();
  const text = (chunk: string | Uint8Array) =>
    typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  const io: CliIo = {
    env: {
      ...process.env,
      CONCLAVE_HTTP_ADDR: options.httpAddr ?? undefined,
      CONSUL_HTTP_ADDR: undefined,
      ...options.env,
    },
    cwd: options.cwd ?? tmpdir(),
    stdout: { write: (chunk) => (out.stdout += text(chunk)) },
    stderr: { write: (chunk) => (out.stderr += text(chunk)) },
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
    stdinIsTty: false,
    inheritStdio: false,
    signals,
  };
  return { io, out, signals, run: (argv: readonly string[]): Promise<ExitCode> => runCli(argv, io) };
}

/** Run one command; its exit code and output. */
export async function run(
  argv: readonly string[],
  options: CliOptions,
): Promise<Captured & { code: ExitCode }> {
  const c = cli(options);
  const code = await c.run(argv);
  return { code, ...c.out };
}
