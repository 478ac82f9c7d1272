import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeDisk, writeFileAtomic } from '@conclave/storage';
import { ConclaveError } from '../errors.js';

/** What a data directory was created for. A server never opens another server's data. */
export interface DataDirIdentity {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly groups: number;
  readonly formatVersion: 1;
}

const fileName = 'identity.json';

/**
 * The node id `dir` was created for, or null when it holds no identity yet (or an unreadable
 * one, which `claimDataDir` reports). A server started again without `--node-id` keeps it.
 */
export function storedNodeId(dir: string): string | null {
  try {
    const stored: unknown = JSON.parse(readFileSync(join(dir, fileName), 'utf8'));
    if (
      typeof stored === 'object' &&
      stored !== null &&
      'nodeId' in stored &&
      typeof stored.nodeId === 'string'
    )
      return stored.nodeId;
  } catch {
    // No identity yet (a first start), or a damaged one: claimDataDir says which, later.
  }
  return null;
}

/**
 * Check (or, on first start, record) which server owns `dir`. Starting a data directory
 * under another node id, cluster or group count would corrupt the cluster, so it is refused.
 */
export function claimDataDir(options: { dir: string; identity: Omit<DataDirIdentity, 'formatVersion'> }): {
  fresh: boolean;
} {
  const { dir, identity } = options;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, fileName);
  if (!existsSync(path)) {
    // Atomically: a crash mid-write must not leave a truncated file that blocks every restart.
    const text = `${JSON.stringify({ ...identity, formatVersion: 1 }, null, 2)}\n`;
    writeFileAtomic({ disk: new NodeDisk(), dir, name: fileName, data: new TextEncoder().encode(text) });
    return { fresh: true };
  }
  let stored: DataDirIdentity;
  try {
    stored = JSON.parse(readFileSync(path, 'utf8')) as DataDirIdentity;
  } catch (error) {
    throw new ConclaveError({
      code: 'CONFIG_INVALID',
      message: `${path} is unreadable (${error instanceof Error ? error.message : String(error)}); refusing to start`,
    });
  }
  for (const key of ['nodeId', 'clusterId', 'groups'] as const) {
    if (stored[key] !== identity[key]) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `data dir ${dir} belongs to ${key} ${JSON.stringify(stored[key])}, not ${JSON.stringify(identity[key])}; use that setting or another data dir`,
      });
    }
  }
  return { fresh: false };
}
