import type { Logger } from 'pino';
import { ConclaveError } from '../errors.js';
import type { ConclaveFsm, FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCaller } from './calls.js';

export interface ReaperLimits {
  /**
   * A staging unchanged this long is aborted (ms): longer than bodyIdleMs, so a restore that
   * is still running never loses its staging; only an orphan (its proposer died, or a client
   * of the internal endpoint began and stopped) does.
   */
  readonly restoreStagingIdleMs: number;
  /** How often each group this server leads is checked (ms). */
  readonly checkIntervalMs: number;
  /** How long proposing one abort may take (ms). */
  readonly abortWaitMs: number;
}

export const defaultReaperLimits: ReaperLimits = {
  restoreStagingIdleMs: 10 * 60_000,
  checkIntervalMs: 30_000,
  abortWaitMs: 10_000,
};

/** A restore staged in a group, as far as the reaper needs it. */
export interface StagingView {
  readonly restoreId: string;
  readonly parts: number;
}

/** A group's staging, O(1). */
export function stagingOf(fsm: ConclaveFsm): StagingView | null {
  const staged = fsm.stagedRestore();
  return staged === null ? null : { restoreId: staged.restoreId, parts: staged.parts };
}

interface GroupWatch {
  /**
   * Since when the group's staging is known unchanged (ms): the last restore command
   * applied here, snapshot installed, or (for a restore of ours) look.
   */
  sinceMs: number;
  /** False once a look found no staging and nothing changed since. */
  suspect: boolean;
}

/**
 * Aborts orphaned restore stagings. Staged rows live in every replica's memory and every
 * Raft snapshot until a commit or an abort, and nothing else ever drops one whose proposer
 * is gone. On each group this server leads, a staging whose (restoreId, parts) has not
 * changed for restoreStagingIdleMs, and which no restore on this server is running, is
 * aborted through Raft, so every replica drops it at the same entry. Any applied restore
 * command counts as a change (observeApplied), so groups with no restore activity are not
 * looked at again.
 */
export class RestoreReaper {
  private readonly limits: ReaperLimits;
  private readonly watches = new Map<GroupId, GroupWatch>();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      caller: GroupCaller;
      staging: (groupId: GroupId) => StagingView | null;
      /** Whether the restore running on this server staged it: never reaped. */
      ownsStaging: (restoreId: string) => boolean;
      now: () => number;
      logger: Logger;
      limits?: Partial<ReaperLimits>;
    },
  ) {
    this.limits = { ...defaultReaperLimits, ...options.limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConclaveError({ code: 'CONFIG_INVALID', message: `${name} must be a positive integer` });
      }
    }
    const nowMs = options.now();
    // Unknown at start (a snapshot loaded from disk may hold a staging): every group is suspect.
    for (let groupId = 0; groupId < options.host.groupCount; groupId++) {
      this.watches.set(groupId, { sinceMs: nowMs, suspect: true });
    }
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.check(), this.limits.checkIntervalMs);
    // The reaper must not keep a stopping server alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Every applied result: a restore command may have changed the group's staging. */
  observeApplied(options: { groupId: GroupId; result: FsmResult }): void {
    if (options.result.type === 'restore') this.changed(options.groupId);
  }

  /** A Raft snapshot installed into the group replaced its staging unseen. */
  observeInstalled(groupId: GroupId): void {
    this.changed(groupId);
  }

  /** One pass over the groups this server leads; returns the restoreIds it aborted. */
  async check(): Promise<string[]> {
    if (this.checking) return [];
    this.checking = true;
    try {
      const aborts: Promise<string | null>[] = [];
      for (const [groupId, watch] of this.watches) {
        if (this.options.host.group(groupId).raw.status().role !== 'leader') continue;
        const abort = this.checkGroup(groupId, watch);
        if (abort !== null) aborts.push(abort);
      }
      const aborted = await Promise.all(aborts);
      return aborted.filter((id): id is string => id !== null);
    } finally {
      this.checking = false;
    }
  }

  private changed(groupId: GroupId): void {
    const watch = this.watches.get(groupId);
    if (watch === undefined) return;
    watch.sinceMs = this.options.now();
    watch.suspect = true;
  }

  private checkGroup(groupId: GroupId, watch: GroupWatch): Promise<string | null> | null {
    const nowMs = this.options.now();
    if (!watch.suspect || nowMs - watch.sinceMs < this.limits.restoreStagingIdleMs) return null;
    const staged = this.options.staging(groupId);
    if (staged === null) {
      watch.suspect = false;
      return null;
    }
    if (this.options.ownsStaging(staged.restoreId)) {
      // A live restore of ours, between parts or committing: looked at again after the idle time.
      watch.sinceMs = nowMs;
      return null;
    }
    // Every change to a staging is an applied command or an install, both observed: quiet
    // since sinceMs means (restoreId, parts) has not changed for that long.
    return this.abort({ groupId, staged, idleMs: nowMs - watch.sinceMs });
  }

  private async abort(options: {
    groupId: GroupId;
    staged: StagingView;
    idleMs: number;
  }): Promise<string | null> {
    const { groupId, staged, idleMs } = options;
    const { restoreId } = staged;
    try {
      await this.options.caller.call({
        groupId,
        call: { kind: 'apply', command: { type: 'restore-abort', restoreId } },
        signal: AbortSignal.timeout(this.limits.abortWaitMs),
      });
    } catch (error) {
      // Still staged: the next check tries again.
      this.options.logger.warn(
        { groupId, restoreId, err: error },
        'could not abort an orphaned restore staging',
      );
      return null;
    }
    this.options.logger.info(
      { groupId, restoreId, parts: staged.parts, idleMs },
      'aborted an orphaned restore staging',
    );
    return restoreId;
  }
}
