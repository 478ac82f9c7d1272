import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import {
  acquireDataDirLock,
  currentBootId,
  type DataDirLockRecord,
  dataDirLockFileName,
  processStartTicks,
} from './data-dir-lock.js';

const root = mkdtempSync(join(tmpdir(), 'conclave-data-dir-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'dir-'));
const lockPath = (dir: string) => join(dir, dataDirLockFileName);
const hasProc = processStartTicks(process.pid) !== null;

/** Children started by a test, killed after it (each waited for, so none outlives the file). */
const children: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => exitOf(child, 'SIGKILL')));
});

function exitOf(child: ChildProcess, signal?: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (signal !== undefined) child.kill(signal);
  return exited;
}

/** A process that runs until killed, once it has started (so its pid is live). */
async function liveProcess(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  children.push(child);
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  if (child.pid === undefined) throw new Error('the child has no pid');
  return child.pid;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await exitOf(child);
  if (child.pid === undefined) throw new Error('the child had no pid');
  return child.pid;
}

/** A lock file as another agent would have written it. */
function writeLock(dir: string, holder: Partial<DataDirLockRecord> & { pid: number }): DataDirLockRecord {
  const record: DataDirLockRecord = {
    hostname: hostname(),
    bootId: currentBootId(),
    processStartTicks: processStartTicks(holder.pid),
    startedAt: '2030-01-02T03:04:05.000Z',
    nodeId: 'other',
    token: 'other-token',
    ...holder,
  };
  writeFileSync(lockPath(dir), JSON.stringify(record));
  return record;
}

function lockedError(run: () => unknown): ConclaveError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConclaveError) return error;
    throw error;
  }
  throw new Error('the lock was taken');
}

const readLock = (dir: string) => JSON.parse(readFileSync(lockPath(dir), 'utf8')) as DataDirLockRecord;

describe('acquireDataDirLock', () => {
  it('takes a free data dir, naming this process in the lock file; release removes the file', () => {
    const dir = join(freshDir(), 'not-yet-created');
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    const record = readLock(dir);
    expect(record).toEqual(lock.record);
    expect(record).toMatchObject({ pid: process.pid, hostname: hostname(), nodeId: 's1' });
    expect(lock.replacedStale).toEqual([]);
    // The temporary file the lock was linked from is gone.
    expect(readdirSync(dir)).toEqual([dataDirLockFileName]);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
    lock.release();
    acquireDataDirLock({ dir, nodeId: 's1' }).release();
  });

  it('refuses while this process holds the lock already (two agents in one process)', () => {
    const dir = freshDir();
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    const error = lockedError(() => acquireDataDirLock({ dir, nodeId: 's1' }));
    expect(error.code).toBe('DATA_DIR_LOCKED');
    expect(error.message).toContain(`pid ${process.pid}`);
    lock.release();
  });

  it('refuses while a live process holds it, naming its pid, host and start time', async () => {
    const dir = freshDir();
    const pid = await liveProcess();
    const holder = writeLock(dir, { pid });
    const error = lockedError(() => acquireDataDirLock({ dir, nodeId: 's1' }));
    expect(error.code).toBe('DATA_DIR_LOCKED');
    expect(error.message).toContain(`pid ${pid} on this host (${hostname()})`);
    expect(error.message).toContain(`started ${holder.startedAt}`);
    expect(error.message).toContain(lockPath(dir));
    expect(readLock(dir)).toEqual(holder);
    expect(readdirSync(dir)).toEqual([dataDirLockFileName]);
  });

  it('takes over the lock of a process that is gone (killed with SIGKILL)', async () => {
    const dir = freshDir();
    const pid = await liveProcess();
    const holder = writeLock(dir, { pid });
    const child = children.find((c) => c.pid === pid);
    if (child === undefined) throw new Error('no child');
    await exitOf(child, 'SIGKILL');
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    expect(lock.replacedStale).toEqual([{ record: holder, reason: `pid ${pid} is no longer running` }]);
    expect(readLock(dir).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual([dataDirLockFileName]);
    lock.release();
  });

  it('takes over a lock whose pid was exited before this test began', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    writeLock(dir, { pid, processStartTicks: null });
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    expect(lock.replacedStale.map((s) => s.reason)).toEqual([`pid ${pid} is no longer running`]);
    lock.release();
  });

  it.skipIf(!hasProc)('takes over a lock whose pid now names another process (pid reuse)', async () => {
    const dir = freshDir();
    const pid = await liveProcess();
    const started = processStartTicks(pid);
    if (started === null) throw new Error('no start time');
    writeLock(dir, { pid, processStartTicks: started - 1 });
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    expect(lock.replacedStale.map((s) => s.reason)).toEqual([
      `pid ${pid} now belongs to another process (started at tick ${started}, not ${started - 1})`,
    ]);
    lock.release();
  });

  it.skipIf(currentBootId() === null)('takes over a lock written before the last boot', async () => {
    const dir = freshDir();
    const pid = await liveProcess();
    writeLock(dir, { pid, bootId: 'another-boot' });
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    expect(lock.replacedStale.map((s) => s.reason)).toEqual([
      `pid ${pid} held it before this machine last booted`,
    ]);
    lock.release();
  });

  it('takes over an unreadable lock file (a crash before its data reached the disk)', () => {
    const dir = freshDir();
    writeFileSync(lockPath(dir), '');
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    expect(lock.replacedStale).toEqual([{ record: null, reason: 'the lock file is unreadable' }]);
    expect(readLock(dir).token).toBe(lock.record.token);
    lock.release();
  });

  it('refuses a lock held on another host, whose process cannot be checked from here', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    writeLock(dir, { pid, hostname: 'elsewhere.example' });
    const error = lockedError(() => acquireDataDirLock({ dir, nodeId: 's1' }));
    expect(error.code).toBe('DATA_DIR_LOCKED');
    expect(error.message).toContain(`pid ${pid} on host elsewhere.example, not this one`);
  });

  it('release leaves alone a lock file that another holder wrote since', () => {
    const dir = freshDir();
    const lock = acquireDataDirLock({ dir, nodeId: 's1' });
    const other = writeLock(dir, { pid: process.pid, token: 'someone-else' });
    lock.release();
    expect(readLock(dir)).toEqual(other);
  });
});
