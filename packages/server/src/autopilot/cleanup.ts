import type { Logger } from 'pino';
import { isExpectedError } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { keepsReachableMajority, type RemoveLimits, removeFromGroup } from '../service/status.js';
import { type AutopilotSettings, deadServerThresholdMs } from './config.js';

/** What a group's leader remembers of its members, for as long as it leads in one term. */
interface GroupWatch {
  readonly term: number;
  /** Wall-clock ms each member was last seen recently active (or leadership began). */
  readonly lastActiveMs: Map<string, number>;
  /** A removal is under way: one change at a time per group. */
  removing: boolean;
  /** Members whose removal the floor refused, so the refusal is logged once per episode. */
  readonly refused: Set<string>;
}

/**
 * Dead server cleanup, run by each group's leader: a member the leader has not heard from
 * for the dead-server threshold is removed, one change at a time per group. A voter is
 * kept when its removal would leave fewer voters than MinQuorum, or fewer reachable voters
 * than a majority of those left (removeFromGroup's guard). A new leader, or a new term,
 * starts counting from zero, so a server is never judged on another leader's silence.
 */
/**
 * How the reason of every removal by dead-server cleanup begins: a server that finds itself
 * removed this way asks to be added back (agent/rejoin.ts); one an operator removed does not.
 */
export const autopilotRemovalPrefix = 'autopilot dead server cleanup';

export class DeadServerCleaner {
  private readonly watches = new Map<GroupId, GroupWatch>();

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      logger: Logger;
      tickMs: number;
      removeLimits: RemoveLimits;
      signal: AbortSignal;
    },
  ) {}

  /** One pass over every group this server leads. */
  check(options: { settings: AutopilotSettings; nowMs: number }): void {
    const { host } = this.options;
    for (let groupId = 0; groupId < host.groupCount; groupId++) this.checkGroup({ ...options, groupId });
  }

  /** Wall-clock ms since the leader last heard from `nodeId` in the group; null when not leading. */
  silentMs(options: { groupId: GroupId; nodeId: string; nowMs: number }): number | null {
    const seen = this.watches.get(options.groupId)?.lastActiveMs.get(options.nodeId);
    return seen === undefined ? null : options.nowMs - seen;
  }

  private checkGroup(options: { groupId: GroupId; settings: AutopilotSettings; nowMs: number }): void {
    const { groupId, settings, nowMs } = options;
    const status = this.options.host.group(groupId).raw.status();
    if (status.role !== 'leader' || status.progress === null) {
      this.watches.delete(groupId);
      return;
    }
    let watch = this.watches.get(groupId);
    if (watch === undefined || watch.term !== status.term) {
      watch = { term: status.term, lastActiveMs: new Map(), removing: false, refused: new Set() };
      this.watches.set(groupId, watch);
    }
    const { voters, learners } = status.confState;
    const members = [...voters, ...learners];
    for (const id of [...watch.lastActiveMs.keys()]) if (!members.includes(id)) watch.lastActiveMs.delete(id);
    for (const id of members) {
      const active = id === status.id || (status.progress.get(id)?.recentActive ?? false);
      if (active || !watch.lastActiveMs.has(id)) {
        watch.lastActiveMs.set(id, nowMs);
        watch.refused.delete(id);
      }
    }
    if (!settings.cleanupDeadServers || watch.removing) return;
    const thresholdMs = deadServerThresholdMs(settings);
    const dead = members
      .filter((id) => nowMs - (watch.lastActiveMs.get(id) ?? nowMs) > thresholdMs)
      .sort((a, b) => (learners.includes(a) === learners.includes(b) ? 0 : learners.includes(a) ? -1 : 1));
    for (const nodeId of dead) {
      const voter = voters.includes(nodeId);
      const refusal = voter ? this.floorRefusal({ nodeId, voters, settings, status }) : null;
      if (refusal !== null) {
        if (!watch.refused.has(nodeId)) {
          watch.refused.add(nodeId);
          this.options.logger.warn(
            {
              event: 'dead_server_kept',
              group: groupId,
              server: nodeId,
              term: status.term,
              index: status.lastIndex,
              reason: refusal,
            },
            `autopilot: group ${groupId}: keeping dead server ${nodeId} (term ${status.term}): ${refusal}`,
          );
        }
        continue;
      }
      this.remove({
        groupId,
        nodeId,
        watch,
        term: status.term,
        silentMs: nowMs - (watch.lastActiveMs.get(nodeId) ?? nowMs),
        thresholdMs,
      });
      return;
    }
  }

  /** Why removing the voter is refused, or null when it may go. */
  private floorRefusal(options: {
    nodeId: string;
    voters: readonly string[];
    settings: AutopilotSettings;
    status: { id: string; progress: ReadonlyMap<string, { readonly recentActive: boolean }> | null };
  }): string | null {
    const { nodeId, voters, settings, status } = options;
    if (settings.minQuorum > 0 && voters.length - 1 < settings.minQuorum) {
      return `removing it would leave ${voters.length - 1} voters, below MinQuorum ${settings.minQuorum}`;
    }
    if (!keepsReachableMajority({ nodeId, voters, progress: status.progress, self: status.id })) {
      return `removing it would leave fewer reachable voters than a majority of ${voters.length - 1}`;
    }
    return null;
  }

  private remove(options: {
    groupId: GroupId;
    nodeId: string;
    watch: GroupWatch;
    term: number;
    silentMs: number;
    thresholdMs: number;
  }): void {
    const { groupId, nodeId, watch, term, silentMs, thresholdMs } = options;
    const { host, logger, tickMs, removeLimits, signal } = this.options;
    watch.removing = true;
    const reason = `${autopilotRemovalPrefix}: not heard from for ${silentMs} ms (threshold ${thresholdMs} ms)`;
    // removeFromGroup logs the proposal at warn with the reason, which also rides in the change's
    // context; every member then logs the change where it applies (metrics/host-events.ts).
    removeFromGroup({ host, groupId, nodeId, tickMs, reason, logger, limits: removeLimits, signal })
      .catch((error: unknown) => {
        if (!isExpectedError(error)) throw error;
        logger.warn(
          {
            event: 'dead_server_not_removed',
            group: groupId,
            server: nodeId,
            term,
            code: error.code,
            reason,
          },
          `autopilot: group ${groupId}: could not remove dead server ${nodeId} (term ${term}): ${error.message}`,
        );
      })
      .finally(() => {
        watch.removing = false;
      });
  }
}
