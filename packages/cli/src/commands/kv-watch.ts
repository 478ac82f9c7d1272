import type { ConclaveClient, KvPair, ReadResult } from '@conclave/client';
import type { Command } from 'commander';
import {
  type CliContext,
  parseNatural,
  runWithClient,
  type ServerFlags,
  serverOptions,
  usageError,
  valueText,
} from './common.js';
import { entryJson } from './format.js';
import { type CliIo, type ExitCode, exitCodes } from './io.js';

interface WatchFlags extends ServerFlags {
  readonly prefix?: boolean;
  readonly count?: string;
}

/** Each blocking query waits this long for a change before asking again (Consul's default). */
export const watchWaitMs = 5 * 60_000;

export function registerKvWatch(kv: Command, ctx: CliContext): void {
  const command = kv
    .command('watch')
    .description('print a key (or the entries under a prefix) now and after every change, until interrupted')
    .argument('<key>', 'the key, or with --prefix the prefix')
    .option('--prefix', 'watch every key under <key>')
    .option('--count <n>', 'stop after n changes (the first print is not a change)');
  serverOptions(command, { json: true }).action((key: string, flags: WatchFlags) =>
    runWithClient(ctx, flags, (client) => kvWatch(ctx, { client, key, flags })),
  );
}

/** What a watch prints: the state it started from, then each change. */
interface Watched<T> {
  read(options: { index: number; signal: AbortSignal }): Promise<ReadResult<T>>;
  /** Print the first state, or the difference from the last one; true when anything changed. */
  show(options: { value: T; index: number; first: boolean }): boolean;
}

async function kvWatch(
  ctx: CliContext,
  options: { client: ConclaveClient; key: string; flags: WatchFlags },
): Promise<ExitCode> {
  const { flags } = options;
  const changesMax = parseNatural(flags.count, '--count');
  if (changesMax === 0) throw usageError('--count must be at least 1');
  const json = flags.json === true;
  const { io } = ctx;
  const { client, key } = options;
  if (flags.prefix === true) {
    return watchLoop(io, { watched: prefixWatch({ io, client, prefix: key, json }), changesMax });
  }
  return watchLoop(io, { watched: keyWatch({ io, client, key, json }), changesMax });
}

/**
 * Blocking queries, one after another, each from the index the last one answered with.
 * An index that goes backwards (a restored snapshot) restarts from 0, as Consul's watches do.
 * SIGINT or SIGTERM end the watch with exit code 0.
 */
async function watchLoop<T>(
  io: CliIo,
  options: { watched: Watched<T>; changesMax: number | undefined },
): Promise<ExitCode> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  io.signals.on('SIGINT', stop);
  io.signals.on('SIGTERM', stop);
  try {
    let index = 0;
    let changes = 0;
    for (let first = true; ; first = false) {
      const read = await options.watched.read({ index, signal: controller.signal });
      index = read.meta.index < index ? 0 : read.meta.index;
      const changed = options.watched.show({ value: read.value, index: read.meta.index, first });
      if (!first && changed) changes += 1;
      if (options.changesMax !== undefined && changes >= options.changesMax) return exitCodes.ok;
    }
  } catch (error) {
    if (controller.signal.aborted) return exitCodes.ok;
    throw error;
  } finally {
    io.signals.off('SIGINT', stop);
    io.signals.off('SIGTERM', stop);
  }
}

function keyWatch(options: {
  io: CliIo;
  client: ConclaveClient;
  key: string;
  json: boolean;
}): Watched<KvPair | null> {
  const { io, client, key, json } = options;
  let last: KvPair | null = null;
  return {
    read: ({ index, signal }) => client.kvGet(key, { index, waitMs: watchWaitMs, signal }),
    show({ value, index, first }) {
      const changed = value?.modifyIndex !== last?.modifyIndex;
      last = value;
      if (!first && !changed) return false;
      if (json)
        io.stdout.write(`${JSON.stringify({ index, entry: value === null ? null : entryJson(value) })}\n`);
      else if (value !== null) {
        io.stdout.write(value.value);
        io.stdout.write('\n');
      } else if (!first) io.stderr.write(`Deleted: ${key}\n`);
      return changed;
    },
  };
}

function prefixWatch(options: {
  io: CliIo;
  client: ConclaveClient;
  prefix: string;
  json: boolean;
}): Watched<KvPair[]> {
  const { io, client, prefix, json } = options;
  let last = new Map<string, number>();
  return {
    read: ({ index, signal }) => client.kvList(prefix, { index, waitMs: watchWaitMs, signal }),
    show({ value, index, first }) {
      const changed = value.filter((e) => last.get(e.key) !== e.modifyIndex);
      const now = new Map(value.map((e) => [e.key, e.modifyIndex]));
      const deleted = [...last.keys()].filter((k) => !now.has(k));
      last = now;
      if (!first && changed.length === 0 && deleted.length === 0) return false;
      if (json) {
        io.stdout.write(`${JSON.stringify({ index, changed: changed.map(entryJson), deleted })}\n`);
      } else {
        io.stdout.write(changed.map((e) => `${e.key}:${valueText(e.value)}\n`).join(''));
        io.stderr.write(deleted.map((k) => `Deleted: ${k}\n`).join(''));
      }
      return true;
    },
  };
}
