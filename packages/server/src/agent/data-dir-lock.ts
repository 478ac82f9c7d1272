/**
 * One agent per data directory. Two agents on one data dir (say, started on different ports)
 * would both append to one WAL and both acknowledge writes, and the log ends up damaged. So
 * an agent takes an exclusive lock on its data dir before it opens anything in it.
 *
 * Node has no flock(2), so the lock is a file that names its holder: pid, host, boot id and
 * the process's start time. A lock whose holder is gone (killed with SIGKILL, crashed, or the
 * machine rebooted) is stale and is taken over, so a crash never blocks a restart. A pid alone
 * is not enough: after a crash the pid may belong to another process, so the holder's start
 * time (from /proc, where there is one) must match too.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConclaveError } from '../errors.js';

export const dataDirLockFileName = 'agent.lock';

/**
 * Tries to create the lock file. Each failed try either removed a stale lock or lost a race
 * with another starting agent, so a few suffice; more would mean agents keep starting on this
 * data dir, and refusing is then the right answer.
 */
export const dataDirLockAttemptsMax = 3;

/** What the lock file says about the process holding it. */
export interface DataDirLockRecord {
  readonly pid: number;
  readonly hostname: string;
  /**
   * Linux's boot id (/proc/sys/kernel/random/boot_id), null elsewhere: a lock written before
   * the last reboot is stale whatever its pid.
   */
  readonly bootId: string | null;
  /**
   * The holder's start time in clock ticks since boot (/proc/<pid>/stat, field 22), null
   * without /proc. With the pid it names one process, even once the pid is reused.
   */
  readonly processStartTicks: number | null;
  /** Wall-clock time the lock was taken, for people reading the error. */
  readonly startedAt: string;
  readonly nodeId: string;
  /** Unique per lock taken: how a holder recognises its own file, and a remover the file it judged. */
  readonly token: string;
}

/** A lock removed because its holder was gone. */
export interface StaleDataDirLock {
  /** Null when the lock file was unreadable. */
  readonly record: DataDirLockRecord | null;
  readonly reason: string;
}

export interface DataDirLock {
  readonly path: string;
  readonly record: DataDirLockRecord;
  /** Locks of dead holders removed on the way: the agent logs them. */
  readonly replacedStale: readonly StaleDataDirLock[];
  /** Remove the lock file if it is still ours. Safe to call more than once. */
  release(): void;
}

type Found = DataDirLockRecord | 'missing' | 'unreadable';

/**
 * Take the data dir's lock, creating the dir if needed. Throws DATA_DIR_LOCKED, naming the
 * holder, when a live process holds it (or one on another host, which cannot be checked).
 */
export function acquireDataDirLock(options: { dir: string; nodeId: string }): DataDirLock {
  mkdirSync(options.dir, { recursive: true });
  const path = join(options.dir, dataDirLockFileName);
  const record = ownRecord(options.nodeId);
  const replacedStale: StaleDataDirLock[] = [];
  for (let attempt = 1; attempt <= dataDirLockAttemptsMax; attempt++) {
    if (tryCreate({ path, record })) return heldLock({ path, record, replacedStale });
    const found = readRecord(path);
    // Released between our try and our read: try again.
    if (found === 'missing') continue;
    // Unreadable is stale: tryCreate never shows a partial file to a reader on this machine,
    // so only a crash of the machine (the data never reached the disk) or tampering leaves one.
    let reason = 'the lock file is unreadable';
    if (found !== 'unreadable') {
      const stale = staleReason(found);
      if (stale === null) throw lockedError({ dir: options.dir, path, holder: found });
      reason = stale;
    }
    if (removeStale({ path, judged: found })) {
      replacedStale.push({ record: found === 'unreadable' ? null : found, reason });
    }
  }
  throw new ConclaveError({
    code: 'DATA_DIR_LOCKED',
    message: `data dir ${options.dir} is in use: could not take its lock ${path} in ${dataDirLockAttemptsMax} attempts, other processes keep taking it`,
  });
}

function heldLock(options: {
  path: string;
  record: DataDirLockRecord;
  replacedStale: readonly StaleDataDirLock[];
}): DataDirLock {
  const { path, record } = options;
  let released = false;
  return {
    path,
    record,
    replacedStale: options.replacedStale,
    release() {
      if (released) return;
      released = true;
      const found = readRecord(path);
      // Never remove another holder's lock (one that judged ours stale, wrongly or not).
      if (found !== 'missing' && found !== 'unreadable' && found.token === record.token)
        unlinkIfPresent(path);
    },
  };
}

/**
 * Create the lock file with its whole content at once: written under a unique name, then
 * linked to the lock's name, which fails with EEXIST if the lock exists (as O_EXCL would).
 * Creating the lock file itself with `wx` would let a reader find it empty, unable to tell a
 * holder still writing it from one that crashed before writing.
 */
function tryCreate(options: { path: string; record: DataDirLockRecord }): boolean {
  const temp = `${options.path}.${options.record.token}.tmp`;
  writeFileSync(temp, `${JSON.stringify(options.record, null, 2)}\n`, { flag: 'wx' });
  try {
    linkSync(temp, options.path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkIfPresent(temp);
  }
}

/** Why the lock's holder is certainly gone, or null if it may still run. */
function staleReason(found: DataDirLockRecord): string | null {
  // Another host's process cannot be checked from here: it is taken to be alive.
  if (found.hostname !== hostname()) return null;
  const bootId = currentBootId();
  if (found.bootId !== null && bootId !== null && found.bootId !== bootId) {
    return `pid ${found.pid} held it before this machine last booted`;
  }
  if (!processExists(found.pid)) return `pid ${found.pid} is no longer running`;
  const startTicks = processStartTicks(found.pid);
  if (found.processStartTicks !== null && startTicks !== null && startTicks !== found.processStartTicks) {
    return `pid ${found.pid} now belongs to another process (started at tick ${startTicks}, not ${found.processStartTicks})`;
  }
  return null;
}

/**
 * Move a stale lock aside and delete it. Renaming is atomic, so of two agents removing the
 * same stale lock one renames it and the other finds nothing. The file moved is read back:
 * if it is not the one judged stale (another agent removed that one and took the lock
 * meanwhile), it is linked back, and the retry then finds that agent holding the lock.
 * Returns whether the stale lock was the one removed.
 *
 * What this cannot close without flock: a third agent creating the lock in the microseconds
 * it is away. Then two agents hold it. That takes three agents starting on one data dir at
 * once, over a stale lock.
 */
function removeStale(options: { path: string; judged: DataDirLockRecord | 'unreadable' }): boolean {
  const aside = `${options.path}.${randomUUID()}.stale`;
  try {
    renameSync(options.path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
  try {
    const moved = readRecord(aside);
    const judged = options.judged;
    const same =
      judged === 'unreadable'
        ? moved === 'unreadable'
        : moved !== 'missing' && moved !== 'unreadable' && moved.token === judged.token;
    if (same) return true;
    try {
      linkSync(aside, options.path);
    } catch (error) {
      // A third agent took the lock in the instant it was away (see above).
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    return false;
  } finally {
    unlinkIfPresent(aside);
  }
}

function lockedError(options: { dir: string; path: string; holder: DataDirLockRecord }): ConclaveError {
  const { holder } = options;
  const here = holder.hostname === hostname();
  const where = here
    ? `on this host (${holder.hostname})`
    : `on host ${holder.hostname}, not this one, so whether it still runs cannot be checked from here`;
  return new ConclaveError({
    code: 'DATA_DIR_LOCKED',
    message: `data dir ${options.dir} is in use by another conclave agent: pid ${holder.pid} ${where}, node ${holder.nodeId}, started ${holder.startedAt} (lock file ${options.path})`,
  });
}

function ownRecord(nodeId: string): DataDirLockRecord {
  return {
    pid: process.pid,
    hostname: hostname(),
    bootId: currentBootId(),
    processStartTicks: processStartTicks(process.pid),
    startedAt: new Date().toISOString(),
    nodeId,
    token: randomUUID(),
  };
}

function readRecord(path: string): Found {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    return parseRecord(JSON.parse(text));
  } catch {
    return 'unreadable';
  }
}

function parseRecord(value: unknown): DataDirLockRecord | 'unreadable' {
  if (typeof value !== 'object' || value === null) return 'unreadable';
  const r = value as Record<string, unknown>;
  const nullableString = (v: unknown) => v === null || typeof v === 'string';
  // A pid of 0 or below would make process.kill signal a whole process group.
  if (
    !Number.isSafeInteger(r.pid) ||
    (r.pid as number) <= 0 ||
    typeof r.hostname !== 'string' ||
    !nullableString(r.bootId) ||
    !(r.processStartTicks === null || Number.isSafeInteger(r.processStartTicks)) ||
    typeof r.startedAt !== 'string' ||
    typeof r.nodeId !== 'string' ||
    typeof r.token !== 'string'
  ) {
    return 'unreadable';
  }
  return {
    pid: r.pid as number,
    hostname: r.hostname,
    bootId: r.bootId as string | null,
    processStartTicks: r.processStartTicks as number | null,
    startedAt: r.startedAt,
    nodeId: r.nodeId,
    token: r.token,
  };
}

/** Signal 0 checks existence only. EPERM: it exists, under another user. */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== 'ESRCH';
  }
}

/** Field 22 of /proc/<pid>/stat; null without /proc or once the process is gone. */
export function processStartTicks(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count after its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const value = Number(fields[22 - 3]);
  return Number.isSafeInteger(value) ? value : null;
}

export function currentBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}
