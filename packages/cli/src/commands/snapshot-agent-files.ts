import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotClient } from '@conclave/client';
import { verifyArchiveFile } from './snapshot-verify.js';

/**
 * The snapshot agent's files: `conclave-<UTC time>-<index>.snap`. The time is written so
 * that names sort as times do, and retention keeps the newest by name.
 */
const archiveName = /^conclave-\d{8}T\d{9}Z-\d+\.snap$/;

/** `20240501T120000123Z`: ISO 8601 basic format, to the millisecond. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, '');
}

export function archiveFileName(options: { atMs: number; index: number }): string {
  return `conclave-${compactTime(options.atMs)}-${options.index}.snap`;
}

/** The agent's archives in `dir`, oldest first. Other files are left alone. */
export async function listArchives(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => archiveName.test(name)).sort();
}

/**
 * Save an archive into `dir`: streamed to a temp file in the same directory, verified
 * (sums, meta), synced, then renamed, so the directory never holds a partial archive
 * under an archive's name. The file's name; null when `keep` aborted meanwhile (the lock
 * was lost or the agent stopped): another agent may be saving by then, so the archive is
 * dropped rather than kept by an agent no longer active.
 */
export async function saveArchive(options: {
  client: SnapshotClient;
  dir: string;
  nowMs: () => number;
  keep: AbortSignal;
}): Promise<{ name: string; bytes: number; index: number } | null> {
  const { client, dir } = options;
  const startedMs = options.nowMs();
  const temp = join(dir, `.conclave-snapshot.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const saved = await client.save({ sink: createWriteStream(temp, { flags: 'wx' }), stale: false });
    // Reading it back (streamed) checks every sum and part: a corrupt archive never gets a real name.
    await verifyArchiveFile({ path: temp, shown: temp });
    if (options.keep.aborted) return null;
    await syncPath(temp);
    const name = archiveFileName({ atMs: startedMs, index: saved.index });
    await rename(temp, join(dir, name));
    // The rename itself is durable only once the directory is synced.
    await syncPath(dir);
    return { name, bytes: saved.bytes, index: saved.index };
  } finally {
    await rm(temp, { force: true });
  }
}

/** Delete all but the newest `retain` archives; the names deleted. */
export async function pruneArchives(options: { dir: string; retain: number }): Promise<string[]> {
  const archives = await listArchives(options.dir);
  const old = archives.slice(0, Math.max(0, archives.length - options.retain));
  for (const name of old) await rm(join(options.dir, name), { force: true });
  return old;
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
