import { type Disk, joinPath } from './disk.js';

/**
 * Replace `dir/name` with `data` so that a crash leaves either the old file or the new one,
 * never a mix: write a temporary file, fsync it, rename it over the target, fsync the
 * directory (without that last step the rename itself may not survive a crash).
 */
export function writeFileAtomic(options: { disk: Disk; dir: string; name: string; data: Uint8Array }): void {
  const { disk, dir, name, data } = options;
  const temp = joinPath(dir, `${name}.tmp`);
  // A leftover from a crash mid-write: it was never renamed, so nothing depends on it.
  if (disk.exists(temp)) disk.unlink(temp);
  const file = disk.open(temp, { mode: 'createExclusive' });
  try {
    file.append(data);
    file.sync();
  } finally {
    file.close();
  }
  disk.rename({ from: temp, to: joinPath(dir, name) });
  disk.syncDir(dir);
}

/** The whole content of a small file, read in one call. */
export function readWholeFile(options: { disk: Disk; path: string }): Uint8Array {
  const file = options.disk.open(options.path, { mode: 'existing' });
  try {
    return file.read({ offset: 0, length: file.size() });
  } finally {
    file.close();
  }
}
