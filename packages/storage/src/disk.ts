import * as fs from 'node:fs';
import { DiskError, DiskSyncError } from './errors.js';

/**
 * The few file operations the WAL and the snapshot store need, and nothing else, so that a
 * simulated disk (`SimDisk`) can stand in for the real one and decide, per byte, what a
 * crash keeps.
 *
 * The interface is synchronous, with one exception:
 * - The Raft core reads its LogStorage synchronously, and the multi-Raft host drives every
 *   group from one event loop. Group commit gathers a batch of Readys and makes it durable
 *   with ONE write and ONE fdatasync; no message that depends on the batch may leave, and
 *   no entry of it may apply, until the fdatasync returns.
 * - Writes land in the page cache and return in microseconds, so they stay synchronous:
 *   the host never has two batches in flight, so nothing needs serialising.
 * - The fdatasync is the exception (`datasyncAsync`): under load from snapshot files it was
 *   measured holding the event loop for 250-500 ms, long enough to miss heartbeats and
 *   lose leaderships. On libuv's thread pool it costs one round trip (tens of
 *   microseconds) and the loop keeps receiving messages, ticking, and serving reads
 *   meanwhile; the host waits for it before the batch's acknowledgements leave.
 * - A disk without `datasyncAsync` (a test double) is synced synchronously.
 *
 * Paths are POSIX paths joined with `/`.
 */
export interface DiskFile {
  readonly path: string;
  /** The current length in bytes, including writes not yet synced. */
  size(): number;
  /** Up to `length` bytes from `offset`; shorter only at the end of the file. */
  read(options: { offset: number; length: number }): Uint8Array;
  /**
   * Optional: `read` on the thread pool, so that start-up reads every group's snapshot file
   * at once. The file must not be closed until it settles. Like `read`, it returns memory
   * the caller owns (never a view of a cache): the FSM keeps views of snapshot bytes.
   */
  readAsync?(options: { offset: number; length: number }): Promise<Uint8Array>;
  /** Write all of `data` at the end of the file. */
  append(data: Uint8Array): void;
  /** Write all of `data` at `offset`, extending the file if needed. */
  writeAt(options: { offset: number; data: Uint8Array }): void;
  truncate(size: number): void;
  /** fdatasync: the data, and the size, are durable when this returns. Throws DiskSyncError. */
  datasync(): void;
  /**
   * fdatasync off the event loop: resolves once the data written before the call is
   * durable; rejects with DiskSyncError. The file must not be closed until it settles.
   */
  datasyncAsync?(): Promise<void>;
  /** fsync: data and all metadata durable. Throws DiskSyncError. */
  sync(): void;
  close(): void;
}

export type OpenMode =
  /** The file must exist. */
  | 'existing'
  /** Create the file if missing; keep its contents if present. */
  | 'create'
  /** Create the file; fail if it exists (a leftover would be a bug). */
  | 'createExclusive';

export interface Disk {
  open(path: string, options: { mode: OpenMode }): DiskFile;
  exists(path: string): boolean;
  /** The names (not paths) in `dir`, in no particular order. */
  readdir(dir: string): string[];
  /** Create `dir` and its parents; a no-op when it exists. */
  mkdir(dir: string): void;
  /** Atomically replace `to` with `from` (POSIX rename). Durable only after syncDir. */
  rename(options: { from: string; to: string }): void;
  /** Durable only after syncDir. */
  unlink(path: string): void;
  /**
   * Optional: unlink off the event loop. Unlinking a 64 MiB WAL segment was measured holding
   * the loop for 350-530 ms under load (the file system frees its extents synchronously).
   */
  unlinkAsync?(path: string): Promise<void>;
  /** fsync the directory, making creates, renames and unlinks in it durable. */
  syncDir(dir: string): void;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

export function dirName(path: string): string {
  const slash = path.lastIndexOf('/');
  if (slash < 0) return '.';
  if (slash === 0) return '/';
  return path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function errnoCode(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return 'EUNKNOWN';
}

function wrap<T>(options: { op: string; path: string }, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof DiskError) throw error;
    throw new DiskError({ ...options, code: errnoCode(error), cause: error });
  }
}

/**
 * Bytes one read call asks for at most: Node truncates a read's length to a 32-bit signed
 * integer, so a single call over 2 GiB would fail; the loops go on until all is read.
 */
const readCallBytesMax = 1024 * 1024 * 1024;

/** One fs.read into `out` from `done` on, on the thread pool. */
function readAt(options: {
  fd: number;
  out: Uint8Array;
  done: number;
  position: number;
}): Promise<{ bytesRead: number }> {
  const { fd, out, done, position } = options;
  const length = Math.min(out.length - done, readCallBytesMax);
  return new Promise((resolve, reject) => {
    fs.read(fd, out, done, length, position, (error, bytesRead) => {
      if (error === null) resolve({ bytesRead });
      else reject(error);
    });
  });
}

class NodeDiskFile implements DiskFile {
  readonly path: string;
  #fd: number;
  // Tracked here so append needs no fstat per write; this handle is the only writer.
  #size: number;

  constructor(options: { path: string; fd: number }) {
    this.path = options.path;
    this.#fd = options.fd;
    this.#size = wrap({ op: 'fstat', path: this.path }, () => fs.fstatSync(options.fd).size);
  }

  size(): number {
    return this.#size;
  }

  read(options: { offset: number; length: number }): Uint8Array {
    const length = Math.max(0, Math.min(options.length, this.#size - options.offset));
    const out = new Uint8Array(length);
    let done = 0;
    wrap({ op: 'read', path: this.path }, () => {
      while (done < length) {
        const call = Math.min(length - done, readCallBytesMax);
        const n = fs.readSync(this.#openFd(), out, done, call, options.offset + done);
        if (n === 0) break;
        done += n;
      }
    });
    return done === length ? out : out.subarray(0, done);
  }

  async readAsync(options: { offset: number; length: number }): Promise<Uint8Array> {
    const length = Math.max(0, Math.min(options.length, this.#size - options.offset));
    const out = new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        // The fd is looked up per call: a close meanwhile is a typed EBADF, not a read of
        // whatever file the OS gave that number to since.
        const fd = this.#openFd();
        const { bytesRead } = await readAt({ fd, out, done, position: options.offset + done });
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (error) {
      throw new DiskError({ op: 'read', path: this.path, code: errnoCode(error), cause: error });
    }
    return done === length ? out : out.subarray(0, done);
  }

  append(data: Uint8Array): void {
    this.writeAt({ offset: this.#size, data });
  }

  writeAt(options: { offset: number; data: Uint8Array }): void {
    const { offset, data } = options;
    wrap({ op: 'write', path: this.path }, () => {
      let done = 0;
      // writeSync may write less than asked (signals, quotas); loop until all is written.
      while (done < data.length) {
        done += fs.writeSync(this.#openFd(), data, done, data.length - done, offset + done);
      }
    });
    this.#size = Math.max(this.#size, offset + data.length);
  }

  truncate(size: number): void {
    wrap({ op: 'ftruncate', path: this.path }, () => fs.ftruncateSync(this.#openFd(), size));
    this.#size = size;
  }

  datasync(): void {
    try {
      fs.fdatasyncSync(this.#openFd());
    } catch (error) {
      throw new DiskSyncError({ op: 'fdatasync', path: this.path, code: errnoCode(error), cause: error });
    }
  }

  datasyncAsync(): Promise<void> {
    const fd = this.#openFd();
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (error) => {
        if (error === null) resolve();
        else
          reject(
            new DiskSyncError({ op: 'fdatasync', path: this.path, code: errnoCode(error), cause: error }),
          );
      });
    });
  }

  sync(): void {
    try {
      fs.fsyncSync(this.#openFd());
    } catch (error) {
      throw new DiskSyncError({ op: 'fsync', path: this.path, code: errnoCode(error), cause: error });
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    wrap({ op: 'close', path: this.path }, () => fs.closeSync(fd));
  }

  #openFd(): number {
    if (this.#fd < 0)
      throw new DiskError({ op: 'use', path: this.path, code: 'EBADF', message: `${this.path} is closed` });
    return this.#fd;
  }
}

/** The real disk, on node:fs, synchronous (see {@link Disk} for why). */
export class NodeDisk implements Disk {
  open(path: string, options: { mode: OpenMode }): DiskFile {
    const flags =
      options.mode === 'existing'
        ? 'r+'
        : options.mode === 'create'
          ? fs.constants.O_RDWR | fs.constants.O_CREAT
          : 'wx+';
    const fd = wrap({ op: 'open', path }, () => fs.openSync(path, flags, 0o644));
    return new NodeDiskFile({ path, fd });
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  readdir(dir: string): string[] {
    return wrap({ op: 'readdir', path: dir }, () => fs.readdirSync(dir));
  }

  mkdir(dir: string): void {
    wrap({ op: 'mkdir', path: dir }, () => fs.mkdirSync(dir, { recursive: true }));
  }

  rename(options: { from: string; to: string }): void {
    wrap({ op: 'rename', path: options.from }, () => fs.renameSync(options.from, options.to));
  }

  unlink(path: string): void {
    wrap({ op: 'unlink', path }, () => fs.unlinkSync(path));
  }

  async unlinkAsync(path: string): Promise<void> {
    try {
      await fs.promises.unlink(path);
    } catch (error) {
      throw new DiskError({ op: 'unlink', path, code: errnoCode(error), cause: error });
    }
  }

  syncDir(dir: string): void {
    const fd = wrap({ op: 'open', path: dir }, () => fs.openSync(dir, 'r'));
    try {
      fs.fsyncSync(fd);
    } catch (error) {
      throw new DiskSyncError({ op: 'fsync', path: dir, code: errnoCode(error), cause: error });
    } finally {
      fs.closeSync(fd);
    }
  }
}
