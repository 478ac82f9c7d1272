import { baseName, type Disk, type DiskFile, dirName, type OpenMode } from './disk.js';
import { DiskError, DiskSyncError } from './errors.js';

/** The random source a SimDisk draws from: the simulator's `Rng` or the core's `Prng` fit. */
export interface RandomSource {
  /** A float in [0, 1). */
  nextFloat(): number;
}

/** What survives a crash beyond the synced state. */
export interface CrashOptions {
  /** Probability that the first unsynced write a crash does not keep survives as a random prefix. */
  readonly tornWriteRate?: number;
  /** Probability that one bit flips inside the unsynced bytes a crash kept (a garbage sector). */
  readonly bitFlipRate?: number;
}

export interface CrashReport {
  /** Per file path: unsynced operations lost, and whether a write was torn or a bit flipped. */
  readonly files: ReadonlyMap<
    string,
    { lostOps: number; keptOps: number; torn: boolean; bitFlipped: boolean }
  >;
  /** Directory operations (create, rename, unlink) not made durable by syncDir and lost. */
  readonly lostDirOps: number;
}

/** Thrown by every operation once a scheduled crash point is reached, until `crash()`. */
export class SimulatedCrashError extends DiskError {
  override readonly name: string = 'SimulatedCrashError';
}

type FileOp =
  | {
      readonly kind: 'write';
      readonly offset: number;
      readonly data: Uint8Array;
      readonly oldLength: number;
      /** The bytes this write replaced, for undo. */
      readonly overwritten: Uint8Array;
    }
  | {
      readonly kind: 'truncate';
      readonly size: number;
      readonly oldLength: number;
      readonly removed: Uint8Array;
    };

interface Inode {
  bytes: Uint8Array;
  length: number;
  /** Operations since the last successful sync, oldest first. */
  pending: FileOp[];
  /** Sticky: once an fsync failed, the kernel may have dropped pages; every later sync fails too. */
  syncError: DiskSyncError | null;
}

type DirOp =
  | { readonly kind: 'link'; readonly name: string; readonly inode: Inode }
  | { readonly kind: 'unlink'; readonly name: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string };

interface Dir {
  current: Map<string, Inode>;
  durable: Map<string, Inode>;
  pending: DirOp[];
}

interface SyncFault {
  readonly kind: 'error' | 'crash';
  /** Syncs (matching `pathIncludes`) to let through first. */
  remaining: number;
  readonly pathIncludes: string;
}

/**
 * An in-memory, seeded disk that knows, per file, which bytes are written and which are
 * synced, and per directory, which names are durable.
 *
 * A crash (`crash()`) reverts every file to its synced bytes, then re-applies a random prefix
 * of its unsynced operations in order, the first one left out possibly torn (a random prefix
 * of its bytes kept) and possibly with a bit flipped in the unsynced bytes kept. Directories
 * likewise keep a random prefix of their unsynced creates, renames and unlinks, as a journaling
 * file system that orders metadata does. Simplifications: directories themselves are durable
 * once created; fsync and fdatasync behave the same; rename stays within one directory.
 *
 * Faults: `scheduleCrash` makes the n-th sync from now throw `SimulatedCrashError` and halt the
 * disk (power loss between a write and its fsync); `failSync` makes a sync throw
 * `DiskSyncError` (EIO), after which that file's syncs keep failing, as on Linux where a failed
 * fsync may have dropped the dirty pages.
 */
export class SimDisk implements Disk {
  readonly #random: RandomSource;
  readonly #dirs = new Map<string, Dir>();
  #generation = 0;
  #halted = false;
  #faults: SyncFault[] = [];
  syncCount = 0;
  bytesWritten = 0;

  constructor(options: { random: RandomSource }) {
    this.#random = options.random;
    this.#dirs.set('/', { current: new Map(), durable: new Map(), pending: [] });
  }

  // ---- Disk ----

  open(path: string, options: { mode: OpenMode }): DiskFile {
    this.#live('open', path);
    const dir = this.#dir(dirName(path), 'open');
    const name = baseName(path);
    let inode = dir.current.get(name);
    if (inode !== undefined && options.mode === 'createExclusive') {
      throw new DiskError({ op: 'open', path, code: 'EEXIST' });
    }
    if (inode === undefined) {
      if (options.mode === 'existing') throw new DiskError({ op: 'open', path, code: 'ENOENT' });
      inode = { bytes: new Uint8Array(64), length: 0, pending: [], syncError: null };
      dir.current.set(name, inode);
      dir.pending.push({ kind: 'link', name, inode });
    }
    return this.#handle(path, inode);
  }

  exists(path: string): boolean {
    this.#live('stat', path);
    if (this.#dirs.has(path)) return true;
    const dir = this.#dirs.get(dirName(path));
    return dir?.current.has(baseName(path)) ?? false;
  }

  readdir(dir: string): string[] {
    this.#live('readdir', dir);
    const names = [...this.#dir(dir, 'readdir').current.keys()];
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    for (const path of this.#dirs.keys()) {
      if (path !== dir && path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) {
        names.push(path.slice(prefix.length));
      }
    }
    return names;
  }

  mkdir(dir: string): void {
    this.#live('mkdir', dir);
    const parts = dir.split('/').filter((p) => p.length > 0);
    let path = '';
    for (const part of parts) {
      path = `${path}/${part}`;
      if (!this.#dirs.has(path))
        this.#dirs.set(path, { current: new Map(), durable: new Map(), pending: [] });
    }
  }

  rename(options: { from: string; to: string }): void {
    this.#live('rename', options.from);
    const dirPath = dirName(options.from);
    if (dirName(options.to) !== dirPath) {
      throw new DiskError({
        op: 'rename',
        path: options.from,
        code: 'EXDEV',
        message: 'SimDisk renames within one directory only',
      });
    }
    const dir = this.#dir(dirPath, 'rename');
    const from = baseName(options.from);
    const to = baseName(options.to);
    const inode = dir.current.get(from);
    if (inode === undefined) throw new DiskError({ op: 'rename', path: options.from, code: 'ENOENT' });
    dir.current.delete(from);
    dir.current.set(to, inode);
    dir.pending.push({ kind: 'rename', from, to });
  }

  unlink(path: string): void {
    this.#live('unlink', path);
    const dir = this.#dir(dirName(path), 'unlink');
    const name = baseName(path);
    if (!dir.current.delete(name)) throw new DiskError({ op: 'unlink', path, code: 'ENOENT' });
    dir.pending.push({ kind: 'unlink', name });
  }

  syncDir(path: string): void {
    this.#beforeSync('fsync', path, null);
    const dir = this.#dir(path, 'fsync');
    dir.durable = new Map(dir.current);
    dir.pending = [];
  }

  // ---- faults and inspection ----

  /** The `afterSyncs + 1`-th sync from now (file or directory) halts the disk instead. */
  scheduleCrash(options: { afterSyncs: number }): void {
    this.#faults.push({ kind: 'crash', remaining: options.afterSyncs, pathIncludes: '' });
  }

  /** The `afterSyncs + 1`-th sync from now of a path containing `pathIncludes` fails with EIO. */
  failSync(options: { afterSyncs?: number; pathIncludes?: string } = {}): void {
    this.#faults.push({
      kind: 'error',
      remaining: options.afterSyncs ?? 0,
      pathIncludes: options.pathIncludes ?? '',
    });
  }

  get halted(): boolean {
    return this.#halted;
  }

  /**
   * Power loss: every file keeps its synced bytes plus a random prefix of its unsynced
   * operations (see the class comment). Open handles become unusable; faults are cleared.
   */
  crash(options: CrashOptions = {}): CrashReport {
    const tornWriteRate = options.tornWriteRate ?? 0.5;
    const bitFlipRate = options.bitFlipRate ?? 0;
    let lostDirOps = 0;
    const seen = new Set<Inode>();
    const files = new Map<string, { lostOps: number; keptOps: number; torn: boolean; bitFlipped: boolean }>();
    for (const [dirPath, dir] of this.#dirs) {
      const keep = this.#int(dir.pending.length + 1);
      lostDirOps += dir.pending.length - keep;
      const names = new Map(dir.durable);
      for (const op of dir.pending.slice(0, keep)) applyDirOp(names, op);
      dir.durable = names;
      dir.current = new Map(names);
      dir.pending = [];
      for (const [name, inode] of dir.current) {
        if (seen.has(inode)) continue;
        seen.add(inode);
        files.set(
          `${dirPath === '/' ? '' : dirPath}/${name}`,
          this.#crashFile(inode, { tornWriteRate, bitFlipRate }),
        );
      }
    }
    this.#generation++;
    this.#halted = false;
    this.#faults = [];
    return { files, lostDirOps };
  }

  /** The current bytes of a file (synced or not). */
  fileBytes(path: string): Uint8Array {
    const inode = this.#inode(path);
    return inode.bytes.slice(0, inode.length);
  }

  /** Bit rot in synced data: XOR one byte. The file must have no unsynced operations. */
  corrupt(options: { path: string; offset: number; xor?: number }): void {
    const inode = this.#inode(options.path);
    if (inode.pending.length > 0) throw new Error(`corrupt: ${options.path} has unsynced writes`);
    if (options.offset < 0 || options.offset >= inode.length)
      throw new RangeError(`corrupt: offset ${options.offset} outside ${options.path}`);
    inode.bytes[options.offset] = ((inode.bytes[options.offset] as number) ^ (options.xor ?? 0x01)) & 0xff;
  }

  // ---- internals ----

  /** A handle lives in this class body so it can reach the private state, and no more. */
  #handle(path: string, inode: Inode): DiskFile {
    const generation = this.#generation;
    let closed = false;
    const check = (op: string): void => {
      if (closed) throw new DiskError({ op, path, code: 'EBADF', message: `${path} is closed` });
      this.#live(op, path);
      if (generation !== this.#generation) {
        throw new DiskError({ op, path, code: 'EBADF', message: `${path}: handle from before a crash` });
      }
    };
    const write = (offset: number, data: Uint8Array): void => {
      const oldLength = inode.length;
      const overwritten =
        offset < oldLength
          ? inode.bytes.slice(offset, Math.min(oldLength, offset + data.length))
          : new Uint8Array(0);
      const copy = data.slice();
      writeBytes(inode, offset, copy);
      inode.pending.push({ kind: 'write', offset, data: copy, oldLength, overwritten });
      this.bytesWritten += data.length;
    };
    const sync = (op: string): void => {
      check(op);
      this.#beforeSync(op, path, inode);
      inode.pending = [];
    };
    return {
      path,
      size: () => {
        check('fstat');
        return inode.length;
      },
      read: (options) => {
        check('read');
        const end = Math.min(inode.length, options.offset + options.length);
        return inode.bytes.slice(Math.min(options.offset, end), end);
      },
      append: (data) => {
        check('write');
        write(inode.length, data);
      },
      writeAt: (options) => {
        check('write');
        write(options.offset, options.data);
      },
      truncate: (size) => {
        check('ftruncate');
        const oldLength = inode.length;
        const removed = size < oldLength ? inode.bytes.slice(size, oldLength) : new Uint8Array(0);
        setLength(inode, size);
        inode.pending.push({ kind: 'truncate', size, oldLength, removed });
      },
      datasync: () => sync('fdatasync'),
      sync: () => sync('fsync'),
      close: () => {
        closed = true;
      },
    };
  }

  #beforeSync(op: string, path: string, inode: Inode | null): void {
    this.#live(op, path);
    if (inode?.syncError) throw inode.syncError;
    this.syncCount++;
    for (let i = 0; i < this.#faults.length; i++) {
      const fault = this.#faults[i] as SyncFault;
      if (!path.includes(fault.pathIncludes)) continue;
      if (fault.remaining > 0) {
        fault.remaining--;
        continue;
      }
      this.#faults.splice(i, 1);
      if (fault.kind === 'crash') {
        this.#halted = true;
        throw new SimulatedCrashError({
          op,
          path,
          code: 'ESIMCRASH',
          message: `simulated crash at ${op} ${path}`,
        });
      }
      const error = new DiskSyncError({ op, path, code: 'EIO', message: `simulated EIO at ${op} ${path}` });
      if (inode !== null) inode.syncError = error;
      throw error;
    }
  }

  #crashFile(
    inode: Inode,
    options: { tornWriteRate: number; bitFlipRate: number },
  ): { lostOps: number; keptOps: number; torn: boolean; bitFlipped: boolean } {
    const ops = inode.pending;
    for (let i = ops.length - 1; i >= 0; i--) undo(inode, ops[i] as FileOp);
    const keep = this.#int(ops.length + 1);
    let lastKept: { offset: number; length: number } | null = null;
    for (const op of ops.slice(0, keep)) {
      redo(inode, op);
      if (op.kind === 'write') lastKept = { offset: op.offset, length: op.data.length };
    }
    let torn = false;
    const next = ops[keep];
    if (next?.kind === 'write' && next.data.length > 1 && this.#random.nextFloat() < options.tornWriteRate) {
      const prefix = 1 + this.#int(next.data.length - 1);
      writeBytes(inode, next.offset, next.data.subarray(0, prefix));
      lastKept = { offset: next.offset, length: prefix };
      torn = true;
    }
    let bitFlipped = false;
    if (lastKept !== null && lastKept.length > 0 && this.#random.nextFloat() < options.bitFlipRate) {
      const at = lastKept.offset + this.#int(lastKept.length);
      inode.bytes[at] = ((inode.bytes[at] as number) ^ (1 << this.#int(8))) & 0xff;
      bitFlipped = true;
    }
    inode.pending = [];
    inode.syncError = null;
    return { lostOps: ops.length - keep, keptOps: keep, torn, bitFlipped };
  }

  #int(bound: number): number {
    return Math.min(bound - 1, Math.floor(this.#random.nextFloat() * bound));
  }

  #live(op: string, path: string): void {
    if (this.#halted)
      throw new SimulatedCrashError({
        op,
        path,
        code: 'ESIMCRASH',
        message: `disk halted by a simulated crash (${op} ${path})`,
      });
  }

  #dir(path: string, op: string): Dir {
    const dir = this.#dirs.get(path);
    if (dir === undefined) throw new DiskError({ op, path, code: 'ENOENT' });
    return dir;
  }

  #inode(path: string): Inode {
    const inode = this.#dir(dirName(path), 'stat').current.get(baseName(path));
    if (inode === undefined) throw new DiskError({ op: 'stat', path, code: 'ENOENT' });
    return inode;
  }
}

function applyDirOp(names: Map<string, Inode>, op: DirOp): void {
  if (op.kind === 'link') names.set(op.name, op.inode);
  else if (op.kind === 'unlink') names.delete(op.name);
  else {
    const inode = names.get(op.from);
    names.delete(op.from);
    // A rename whose create was lost moves nothing; the target keeps its durable file.
    if (inode !== undefined) names.set(op.to, inode);
  }
}

function setLength(inode: Inode, length: number): void {
  if (length > inode.bytes.length) {
    const grown = new Uint8Array(Math.max(length, inode.bytes.length * 2));
    grown.set(inode.bytes.subarray(0, inode.length));
    inode.bytes = grown;
  } else if (length > inode.length) {
    // Bytes past the old end may hold leftovers of an undone write: a hole reads as zeros.
    inode.bytes.fill(0, inode.length, length);
  }
  inode.length = length;
}

function writeBytes(inode: Inode, offset: number, data: Uint8Array): void {
  if (offset + data.length > inode.length) setLength(inode, offset + data.length);
  inode.bytes.set(data, offset);
}

function undo(inode: Inode, op: FileOp): void {
  if (op.kind === 'write') {
    inode.bytes.set(op.overwritten, op.offset);
    inode.length = op.oldLength;
  } else {
    if (op.removed.length > 0) {
      setLength(inode, op.oldLength);
      inode.bytes.set(op.removed, op.size);
    }
    inode.length = op.oldLength;
  }
}

function redo(inode: Inode, op: FileOp): void {
  if (op.kind === 'write') writeBytes(inode, op.offset, op.data);
  else setLength(inode, op.size);
}
