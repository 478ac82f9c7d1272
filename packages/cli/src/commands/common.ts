import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type Conclave,
  ConclaveClient,
  ConclaveClientError,
  connect,
  defaultHttpLimits,
} from '@conclave/client';
import { ConclaveError, type ErrorCode, errorCatalogue, parseGoDuration } from '@conclave/protocol';
import type { Command } from 'commander';
import { type CliIo, type ExitCode, exitCodes } from './io.js';

/** What every client command is run with. */
export interface CliContext {
  readonly io: CliIo;
  /** Receives the command's exit code once it is done. */
  readonly exit: (code: ExitCode) => void;
}

/** The flags every command that talks to a server takes. */
export interface ServerFlags {
  readonly httpAddr?: string;
  readonly json?: boolean;
}

export const defaultHttpAddr = '127.0.0.1:8500';
export const httpAddrEnv = 'CONCLAVE_HTTP_ADDR';
/** Consul's own variable, read after ours: scripts written for `consul kv` keep working. */
export const consulHttpAddrEnv = 'CONSUL_HTTP_ADDR';

/** Largest value or import file the CLI reads (from stdin or a file), bytes. */
export const inputBytesMax = 64 * 1024 * 1024;

export function usageError(message: string): ConclaveError {
  return new ConclaveError({ code: 'USAGE', message });
}

/** The options the program takes before any command as well as after it. */
type GlobalFlag = keyof ServerFlags;

const globalFlags: Readonly<Record<GlobalFlag, { flags: string; description: string }>> = {
  httpAddr: {
    flags: '--http-addr <host:port>',
    description: `the server to talk to (env ${httpAddrEnv}, then ${consulHttpAddrEnv}; default ${defaultHttpAddr})`,
  },
  json: { flags: '--json', description: 'print JSON for machines instead of text for people' },
};

/** Which global options each command declares, so that one given before it can apply. */
const declaredGlobals = new WeakMap<Command, Set<GlobalFlag>>();

function declareGlobal(command: Command, flag: GlobalFlag): Command {
  command.option(globalFlags[flag].flags, globalFlags[flag].description);
  const declared = declaredGlobals.get(command) ?? new Set<GlobalFlag>();
  declared.add(flag);
  declaredGlobals.set(command, declared);
  return command;
}

export function serverOptions(command: Command, options: { json: boolean }): Command {
  declareGlobal(command, 'httpAddr');
  if (options.json) declareGlobal(command, 'json');
  return command;
}

/** `--json` on a command that talks to no server (it reads a local file). */
export function jsonOption(command: Command): Command {
  return declareGlobal(command, 'json');
}

/**
 * `--http-addr` and `--json` on the program itself, so they may come before the command
 * (`conclave --http-addr 127.0.0.1:8501 kv get a`) as well as after it. Given before, they
 * apply to the command as if given after it; given in both places, the command's own wins.
 * Given before a command that does not take them (`conclave --json lock ...`), they are a
 * usage error rather than silently ignored.
 */
export function registerGlobalOptions(program: Command): void {
  for (const flag of Object.keys(globalFlags) as GlobalFlag[]) {
    program.option(globalFlags[flag].flags, globalFlags[flag].description);
  }
  program.hook('preAction', (_program, action) => {
    const given = program.opts<ServerFlags>();
    for (const flag of Object.keys(globalFlags) as GlobalFlag[]) {
      const value = given[flag];
      if (value === undefined) continue;
      if (declaredGlobals.get(action)?.has(flag) !== true) {
        const name = globalFlags[flag].flags.split(' ')[0];
        action.error(`error: ${name} does not apply to '${commandPath(action)}'`, {
          exitCode: exitCodes.usage,
          code: 'conclave.globalOption',
        });
      }
      if (action.getOptionValue(flag) === undefined) action.setOptionValueWithSource(flag, value, 'cli');
    }
  });
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The server to talk to: --http-addr, else CONCLAVE_HTTP_ADDR, else CONSUL_HTTP_ADDR, else the default. */
export function httpAddressFor(io: CliIo, flags: ServerFlags): string {
  const fromEnv = (name: string) => {
    const value = io.env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  return flags.httpAddr ?? fromEnv(httpAddrEnv) ?? fromEnv(consulHttpAddrEnv) ?? defaultHttpAddr;
}

/** A client for the server the flags (or the environment) name. */
export function clientFor(io: CliIo, flags: ServerFlags): ConclaveClient {
  return new ConclaveClient({ address: httpAddressFor(io, flags) });
}

/** Client errors that mean the request itself was wrong. */
const usageCodes: ReadonlySet<ErrorCode> = new Set([
  'USAGE',
  'BAD_REQUEST',
  'INVALID_SESSION',
  'CONFIG_INVALID',
  // A snapshot file that does not verify (inspect, restore) is bad input, as is an archive
  // the server refuses (400). `snapshot save` reports its own download's as a server failure.
  'SNAPSHOT_ARCHIVE_INVALID',
]);
const notFoundCodes: ReadonlySet<ErrorCode> = new Set(['KEY_NOT_FOUND', 'SESSION_NOT_FOUND']);
/**
 * A primitive's refusals: the call was well formed but the state did not allow it (a
 * version precondition, a fence that no longer holds the lock, a candidate id taken, more
 * permits than the semaphore has). Nothing changed: the command did not apply (exit 1),
 * as a `kv put --cas` that fails.
 */
const refusedCodes: ReadonlySet<ErrorCode> = new Set([
  'VERSION_MISMATCH',
  'LOCK_NOT_HELD',
  'LOCK_LOST',
  'COUNTER_OVERFLOW',
  'INDEX_OUT_OF_RANGE',
  'NOT_A_CANDIDATE',
  'CANDIDATE_EXISTS',
  'PERMITS_INVALID',
  'SESSION_EXPIRED',
]);

/**
 * Run a command body against a client and turn expected failures into a message and an
 * exit code. Anything else is a bug and propagates.
 */
export async function runWithClient(
  ctx: CliContext,
  flags: ServerFlags,
  body: (client: ConclaveClient) => Promise<ExitCode>,
): Promise<void> {
  let code: ExitCode;
  let client: ConclaveClient | null = null;
  try {
    client = clientFor(ctx.io, flags);
    code = await body(client);
  } catch (error) {
    if (!(error instanceof ConclaveError)) throw error;
    code = reportError(ctx.io, error);
  } finally {
    await client?.close();
  }
  ctx.exit(code);
}

export function reportError(io: CliIo, error: ConclaveError): ExitCode {
  const advice = error instanceof ConclaveClientError ? error.advice : errorCatalogue[error.code].advice;
  io.stderr.write(`Error! ${error.message} (${error.code})\n  ${advice}\n`);
  if (usageCodes.has(error.code)) return exitCodes.usage;
  if (notFoundCodes.has(error.code) || refusedCodes.has(error.code)) return exitCodes.failed;
  return exitCodes.error;
}

/**
 * Run a command body against an SDK connection (`connect()`) to the server the flags name,
 * reporting expected failures as `runWithClient` does. Closing it destroys the session, if
 * the command opened one (a lock, permits, a candidacy): what it held passes on at once.
 * It retries as the other commands' client does, so an unreachable server fails as soon.
 */
export async function runWithConclave(
  ctx: CliContext,
  flags: ServerFlags,
  body: (cv: Conclave) => Promise<ExitCode>,
  options: { sessionName?: string } = {},
): Promise<void> {
  let code: ExitCode;
  let cv: Conclave | null = null;
  try {
    cv = connect({
      servers: [httpAddressFor(ctx.io, flags)],
      retryAttemptsMax: defaultHttpLimits.attemptsMax,
      retryBackoffMs: defaultHttpLimits.retryDelayMs,
      ...(options.sessionName === undefined ? {} : { sessionName: options.sessionName }),
    });
    code = await body(cv);
  } catch (error) {
    if (!(error instanceof ConclaveError)) throw error;
    code = reportError(ctx.io, error);
  } finally {
    await cv?.close();
  }
  ctx.exit(code);
}

/** Report a refusal the SDK answered as a value (null, false) the way the server's would be. */
export function reportRefusal(
  io: CliIo,
  options: { code: ErrorCode; message: string; advice?: string },
): ExitCode {
  return reportError(io, new ConclaveClientError(options));
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A non-negative integer option (an index, flags, a count). */
export function parseNatural(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw usageError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

/** A safe integer (a counter's value, a delta), negative ones included. */
export function parseInteger(text: string, name: string): number {
  const value = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value))
    throw usageError(`${name} must be an integer within ±(2^53 - 1), got ${JSON.stringify(text)}`);
  return value;
}

/** A positive Go duration ("10s", "1m30s", "500ms"), in whole milliseconds. */
export function parseDurationMs(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const ns = parseGoDuration(text);
  const ms = ns === null ? Number.NaN : Math.round(ns / 1e6);
  if (!(ms >= 1 && Number.isSafeInteger(ms)))
    throw usageError(
      `${name} must be a positive duration such as 500ms, 30s or 1h, got ${JSON.stringify(text)}`,
    );
  return ms;
}

/** A value given on the command line: literal text (UTF-8), "-" for stdin or "@file". */
export async function valueArgument(ctx: CliContext, value: string | undefined): Promise<Uint8Array> {
  if (value === undefined) return new Uint8Array(0);
  if (value === '-') return readAll(ctx.io.stdin, { bytesMax: inputBytesMax, what: 'stdin' });
  if (value.startsWith('@')) return readInputFile(ctx.io, value.slice(1));
  return Buffer.from(value);
}

/** Read a stream whole, refusing more than `bytesMax`. */
export async function readAll(
  stream: AsyncIterable<Uint8Array | string>,
  options: { bytesMax: number; what: string },
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = Buffer.from(chunk);
    total += bytes.byteLength;
    if (total > options.bytesMax)
      throw usageError(`${options.what} is larger than ${options.bytesMax} bytes`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total);
}

/** A file's bytes, refusing files over `inputBytesMax`. */
export async function readInputFile(io: CliIo, path: string): Promise<Buffer> {
  const full = resolve(io.cwd, path);
  try {
    const { size } = await stat(full);
    if (size > inputBytesMax) throw usageError(`${path} is larger than ${inputBytesMax} bytes`);
    return await readFile(full);
  } catch (error) {
    if (error instanceof ConclaveError) throw error;
    throw usageError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Text for people: a UTF-8 value as it is. */
export function valueText(value: Uint8Array): string {
  return Buffer.from(value).toString('utf8');
}
