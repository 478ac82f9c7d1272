import type { RemovedServer } from '@conclave/protocol';
import type { NodeId } from '@conclave/raft';
import { type Disk, joinPath, NodeDisk, readWholeFile, writeFileAtomic } from '@conclave/storage';
import type { Logger } from 'pino';

/**
 * The servers removed from groups and not added back, as this server applied the changes:
 * which server, from which groups, when, and why (the removal's context). Kept in
 * `removals.json` in the data dir, because the changes themselves leave the log with the
 * next snapshot and an operator asks after a restart too. Every server applies the same
 * changes, so every server tells the same story (times are each one's own clock).
 */

const fileName = 'removals.json';

export const removalLogLimits = {
  /** Servers remembered; the oldest removal is forgotten first beyond this. */
  serversMax: 256,
} as const;

interface Removal {
  readonly groups: Set<number>;
  atMs: number;
  reason: string;
}

export class RemovalLog {
  private readonly byServer = new Map<NodeId, Removal>();

  private constructor(private readonly options: { disk: Disk; dir: string; logger: Logger }) {}

  static open(options: { dir: string; logger: Logger; disk?: Disk }): RemovalLog {
    const log = new RemovalLog({
      disk: options.disk ?? new NodeDisk(),
      dir: options.dir,
      logger: options.logger,
    });
    log.load();
    return log;
  }

  /** A RemoveNode change of `groupId` applied here. */
  removed(options: { nodeId: NodeId; groupId: number; atMs: number; reason: string }): void {
    const known = this.byServer.get(options.nodeId);
    if (known === undefined) {
      this.byServer.set(options.nodeId, {
        groups: new Set([options.groupId]),
        atMs: options.atMs,
        reason: options.reason,
      });
      this.forgetOldest();
    } else {
      known.groups.add(options.groupId);
      known.atMs = options.atMs;
      known.reason = options.reason;
    }
    this.save();
  }

  /** `nodeId` was added back to `groupId` (as a learner or a voter). */
  readded(options: { nodeId: NodeId; groupId: number }): void {
    const known = this.byServer.get(options.nodeId);
    if (known === undefined || !known.groups.delete(options.groupId)) return;
    if (known.groups.size === 0) this.byServer.delete(options.nodeId);
    this.save();
  }

  list(): RemovedServer[] {
    return [...this.byServer]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, r]) => ({
        id,
        groups: [...r.groups].sort((a, b) => a - b),
        removedAt: new Date(r.atMs).toISOString(),
        reason: r.reason,
      }));
  }

  private forgetOldest(): void {
    while (this.byServer.size > removalLogLimits.serversMax) {
      let oldest: [NodeId, Removal] | null = null;
      for (const entry of this.byServer)
        if (oldest === null || entry[1].atMs < oldest[1].atMs) oldest = entry;
      if (oldest === null) return;
      this.byServer.delete(oldest[0]);
    }
  }

  private save(): void {
    const servers = this.list().map((s) => ({ ...s, removedAtMs: Date.parse(s.removedAt) }));
    writeFileAtomic({
      disk: this.options.disk,
      dir: this.options.dir,
      name: fileName,
      data: new TextEncoder().encode(`${JSON.stringify({ formatVersion: 1, servers }, null, 2)}\n`),
    });
  }

  private load(): void {
    const { disk, dir, logger } = this.options;
    const path = joinPath(dir, fileName);
    if (!disk.exists(path)) return;
    try {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(readWholeFile({ disk, path })));
      const servers =
        typeof parsed === 'object' && parsed !== null && 'servers' in parsed && Array.isArray(parsed.servers)
          ? (parsed.servers as unknown[])
          : [];
      for (const s of servers.slice(0, removalLogLimits.serversMax)) {
        if (typeof s !== 'object' || s === null) continue;
        const { id, groups, removedAtMs, reason } = s as Record<string, unknown>;
        if (typeof id !== 'string' || !Array.isArray(groups) || typeof removedAtMs !== 'number') continue;
        const groupIds = groups.filter((g): g is number => Number.isSafeInteger(g));
        this.byServer.set(id, {
          groups: new Set(groupIds),
          atMs: removedAtMs,
          reason: typeof reason === 'string' ? reason : 'unknown',
        });
      }
    } catch (error) {
      // Advisory only: a damaged file loses the history, never the server.
      logger.warn({ path, err: error }, `ignoring ${path}: it does not parse`);
    }
  }
}
