import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { ConclaveClient } from '@conclave/client';
import { parseGoDuration } from '@conclave/protocol';
import type { Command } from 'commander';
import {
  type CliContext,
  parseNatural,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';
import { type AgentEvent, runSnapshotAgent } from './snapshot-agent-loop.js';

export const defaultSnapshotAgentLockKey = 'conclave/snapshot-agent/.lock';

/** Bounds on the agent's settings: a save more often than this would only load the servers. */
export const snapshotAgentLimits = {
  intervalMsMin: 100,
  intervalMsMax: 30 * 24 * 3_600_000,
  retainMax: 10_000,
} as const;

interface AgentFlags extends ServerFlags {
  readonly interval: string;
  readonly retain: string;
  readonly dir: string;
  readonly lockKey: string;
}

/** `snapshot agent`, on the `snapshot` command. */
export function registerSnapshotAgent(snapshot: Command, ctx: CliContext): void {
  const agent = snapshot
    .command('agent')
    .description(
      'save an archive every interval into a directory, keeping the newest ones; of several agents, the one holding the lock saves',
    )
    .requiredOption('--interval <duration>', 'time between archives (e.g. 1h, 30m, 200ms)')
    .requiredOption('--retain <n>', 'how many archives to keep (the newest)')
    .requiredOption('--dir <path>', 'where to write the archives (created if missing)')
    .option('--lock-key <key>', 'the key whose holder is the active agent', defaultSnapshotAgentLockKey);
  serverOptions(agent, { json: true }).action((flags: AgentFlags) =>
    runWithClient(ctx, flags, (client) => snapshotAgent(ctx, { client, flags })),
  );
}

async function snapshotAgent(
  ctx: CliContext,
  options: { client: ConclaveClient; flags: AgentFlags },
): Promise<ExitCode> {
  const { io } = ctx;
  const { flags } = options;
  const intervalMs = parseInterval(flags.interval);
  const retain = parseNatural(flags.retain, '--retain') ?? 0;
  if (retain < 1 || retain > snapshotAgentLimits.retainMax) {
    throw usageError(`--retain must be between 1 and ${snapshotAgentLimits.retainMax}`);
  }
  if (flags.lockKey.replace(/\/+$/, '') === '') throw usageError('--lock-key must not be empty');
  const dir = resolve(io.cwd, flags.dir);
  await writableDir(dir, flags.dir);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  io.signals.on('SIGINT', onSignal);
  io.signals.on('SIGTERM', onSignal);
  try {
    await runSnapshotAgent({
      client: options.client,
      dir,
      intervalMs,
      retain,
      lockKey: flags.lockKey,
      signal: stop.signal,
      holderName: `conclave snapshot agent: pid ${process.pid} on ${hostname()}, into ${dir}`,
      onEvent: (event) => (flags.json === true ? printJson(io, event) : io.stdout.write(eventText(event))),
    });
  } finally {
    io.signals.off('SIGINT', onSignal);
    io.signals.off('SIGTERM', onSignal);
  }
  return exitCodes.ok;
}

function parseInterval(text: string): number {
  const ns = parseGoDuration(text);
  const ms = ns === null ? Number.NaN : ns / 1e6;
  const { intervalMsMin: min, intervalMsMax: max } = snapshotAgentLimits;
  if (!(ms >= min && ms <= max)) {
    throw usageError(
      `--interval must be a duration between ${min}ms and ${max / 3_600_000}h, got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(ms);
}

async function writableDir(dir: string, shown: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw usageError(`cannot write to ${shown}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function eventText(e: AgentEvent): string {
  switch (e.event) {
    case 'waiting':
      return `Waiting for the lock on ${e.key}, held by session ${e.holder}\n`;
    case 'acquired':
      return `Acquired the lock on ${e.key} (session ${e.session}): this agent saves\n`;
    case 'saved':
      return `Saved ${e.file} (${e.bytes} bytes, index ${e.index})\n`;
    case 'removed':
      return `Removed ${e.file}\n`;
    case 'save-failed':
      return `Error! Saving failed: ${e.message}; trying again next interval\n`;
    case 'lost':
      return `Lost the lock on ${e.key} (${e.reason}); waiting for it again\n`;
    case 'error':
      return `Error! ${e.message}; retrying\n`;
    case 'stopped':
      return 'Stopped: the lock is released\n';
  }
}
