import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConclaveClient, ConclaveClientError } from '@conclave/client';
import { ConclaveError, type ErrorCode, errorCatalogue } from '@conclave/protocol';
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

/** Largest value or import file the CLI reads (from stdin or a file), bytes. */
export const inputBytesMax = 64 * 1024 * 1024;

export function usageError(message: string): ConclaveError {
  return new ConclaveError({ code: 'USAGE', message });
}

export function serverOptions(command: Command, options: { json: boolean }): Command {
  command.option(
    '--http-addr <host:port>',
    `the server to talk to (env ${httpAddrEnv}, default ${defaultHttpAddr})`,
  );
  if (options.json) command.option('--json', 'print JSON for machines instead of text for people');
  return command;
}

/** A client for the server the flags (or the environment) name. */
export function clientFor(io: CliIo, flags: ServerFlags): ConclaveClient {
  const fromEnv = io.env[httpAddrEnv];
  const address = flags.httpAddr ?? (fromEnv === undefined || fromEnv === '' ? defaultHttpAddr : fromEnv);
  return new ConclaveClient({ address });
}

/** Client errors that mean the request itself was wrong. */
const usageCodes: ReadonlySet<ErrorCode> = new Set([
  'USAGE',
  'BAD_REQUEST',
  'INVALID_SESSION',
  'CONFIG_INVALID',
]);
const notFoundCodes: ReadonlySet<ErrorCode> = new Set(['KEY_NOT_FOUND', 'SESSION_NOT_FOUND']);

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
  if (notFoundCodes.has(error.code)) return exitCodes.failed;
  return exitCodes.error;
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
