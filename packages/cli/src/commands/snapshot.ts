import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SnapshotClient } from '@conclave/client';
import { ConclaveError } from '@conclave/protocol';
import type { Command } from 'commander';
import {
  type CliContext,
  jsonOption,
  printJson,
  runWithClient,
  type ServerFlags,
  serverOptions,
} from './common.js';
import { type ExitCode, exitCodes } from './io.js';
import { registerSnapshotAgent } from './snapshot-agent.js';
import { inspectReport, PrefixTally } from './snapshot-inspect.js';
import { inspectPrefixesMax, snapshotArchiveBytesMax } from './snapshot-limits.js';
import { progressBar } from './snapshot-progress.js';
import { archiveFileBytes, verifyArchiveFile } from './snapshot-verify.js';

export { snapshotArchiveBytesMax };

interface SaveFlags extends ServerFlags {
  readonly stale?: boolean;
}

/** `snapshot save | restore | inspect | agent`. */
export function registerSnapshotCommands(snapshot: Command, ctx: CliContext): void {
  const save = snapshot
    .command('save')
    .description('save an archive of every group to <file> (written to a temp file, renamed once verified)')
    .argument('<file>', 'where to write the archive')
    .option('--stale', "the server's own state, without asking leaders (works without a quorum)");
  serverOptions(save, { json: true }).action((file: string, flags: SaveFlags) =>
    runWithClient(ctx, flags, (client) => saveSnapshot(ctx, { baseUrl: client.baseUrl, file, flags })),
  );

  const restore = snapshot
    .command('restore')
    .description('replace every group of the running cluster with the archive in <file>, through Raft')
    .argument('<file>', 'an archive written by `conclave snapshot save`');
  serverOptions(restore, { json: true }).action((file: string, flags: ServerFlags) =>
    runWithClient(ctx, flags, (client) => restoreSnapshot(ctx, { baseUrl: client.baseUrl, file, flags })),
  );

  const inspect = snapshot
    .command('inspect')
    .description('verify an archive and show each group: index, term, size, keys')
    .argument('<file>', 'an archive written by `conclave snapshot save`')
    .option('--kvdetails', 'also count keys and bytes by prefix (up to the first "/")');
  jsonOption(inspect).action((file: string, flags: { kvdetails?: boolean; json?: boolean }) =>
    runLocal(ctx, async () => {
      const tally = flags.kvdetails === true ? new PrefixTally(inspectPrefixesMax) : null;
      const meta = await verifyWithProgress(ctx, {
        file,
        ...(tally === null ? {} : { onPart: (part) => tally.add(part.rows) }),
      });
      const report = inspectReport(meta, tally?.list() ?? null);
      if (flags.json === true) printJson(ctx.io, report.json);
      else ctx.io.stdout.write(report.text);
      return exitCodes.ok;
    }),
  );

  registerSnapshotAgent(snapshot, ctx);
}

async function saveSnapshot(
  ctx: CliContext,
  options: { baseUrl: string; file: string; flags: SaveFlags },
): Promise<ExitCode> {
  const full = resolve(ctx.io.cwd, options.file);
  // Same directory, so the rename is atomic; a crash leaves a temp file, never a partial archive.
  const temp = join(dirname(full), `.${basename(full)}.${randomBytes(6).toString('hex')}.tmp`);
  const client = new SnapshotClient(options.baseUrl);
  const progress = progressBar(ctx.io, { what: 'saving', total: null });
  try {
    const saved = await client.save({
      sink: createWriteStream(temp, { flags: 'wx' }),
      stale: options.flags.stale === true,
      onBytes: (n) => progress.update(n),
    });
    progress.finish(saved.bytes);
    // Read back from disk, so what is verified is what was written.
    const meta = await verifyWithProgress(ctx, { file: temp, shown: options.file }).catch(
      (error: unknown) => {
        throw downloadFailure(error);
      },
    );
    await syncFile(temp);
    await rename(temp, full);
    const keys = meta.groups.reduce((sum, g) => sum + g.keys, 0);
    if (options.flags.json === true) {
      printJson(ctx.io, { file: full, bytes: saved.bytes, index: saved.index, groups: meta.groups });
    } else {
      const indexes = meta.groups.map((g) => `${g.groupId}@${g.index}`).join(' ');
      ctx.io.stdout.write(
        `Saved and verified snapshot to ${options.file}: ${meta.groups.length} groups (${indexes}), ${keys} keys, ${saved.bytes} bytes\n`,
      );
    }
    return exitCodes.ok;
  } finally {
    await rm(temp, { force: true });
    await client.close();
  }
}

async function restoreSnapshot(
  ctx: CliContext,
  options: { baseUrl: string; file: string; flags: ServerFlags },
): Promise<ExitCode> {
  const full = resolve(ctx.io.cwd, options.file);
  const bytes = await archiveFileBytes({ path: full, shown: options.file });
  // Verified here first, streamed: a corrupt file never reaches the server.
  await verifyWithProgress(ctx, { file: options.file });
  const client = new SnapshotClient(options.baseUrl);
  const progress = progressBar(ctx.io, { what: 'restoring', total: bytes });
  try {
    const source = createReadStream(full);
    let sent = 0;
    source.on('data', (chunk) => {
      sent += chunk.length;
      progress.update(sent);
    });
    const answer = await client.restore({ source, bytes });
    progress.finish(sent);
    if (options.flags.json === true) printJson(ctx.io, answer);
    else {
      for (const g of answer.groups) {
        ctx.io.stdout.write(`group ${g.groupId}: restored ${g.keys} keys at index ${g.index}\n`);
      }
      ctx.io.stdout.write(`Restored snapshot ${answer.createdAt} of ${answer.clusterId}\n`);
    }
    return exitCodes.ok;
  } finally {
    await client.close();
  }
}

/**
 * An archive the server sent that does not verify is the server's failure (exit 3), not
 * bad input as a local file that does not verify is (exit 2).
 */
function downloadFailure(error: unknown): unknown {
  if (!(error instanceof ConclaveError) || error.code !== 'SNAPSHOT_ARCHIVE_INVALID') return error;
  return new ConclaveError({
    code: 'BAD_RESPONSE',
    message: `the server sent an archive that does not verify: ${error.message}`,
  });
}

/** Streams the file through the archive reader, with a progress bar for a large one. */
async function verifyWithProgress(
  ctx: CliContext,
  options: { file: string; shown?: string; onPart?: Parameters<typeof verifyArchiveFile>[0]['onPart'] },
) {
  const path = resolve(ctx.io.cwd, options.file);
  const shown = options.shown ?? options.file;
  const progress = progressBar(ctx.io, {
    what: 'verifying',
    total: await archiveFileBytes({ path, shown }),
  });
  let done = 0;
  const meta = await verifyArchiveFile({
    path,
    shown,
    onBytes: (n) => {
      done = n;
      progress.update(n);
    },
    ...(options.onPart === undefined ? {} : { onPart: options.onPart }),
  });
  progress.finish(done);
  return meta;
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A command that talks to no server: expected failures become a message and an exit code. */
async function runLocal(ctx: CliContext, body: () => Promise<ExitCode>): Promise<void> {
  // runWithClient's error reporting, without connecting: the client is made but never used.
  await runWithClient(ctx, {}, () => body());
}
