import type { NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import { autopilotRemovalPrefix } from '../autopilot/cleanup.js';
import { ConclaveError } from '../errors.js';
import { errorMessage } from '../transport/shape.js';
import type { MembershipHost } from './membership.js';
import type { JoinReply, MemberInfo } from './membership-protocol.js';

/**
 * Coming back after being removed while down. A server that autopilot's dead-server cleanup
 * (or an operator) removed from a group while it was stopped still finds itself a voter in
 * its own log when it restarts; the others no longer count it, so it never hears from a
 * leader and campaigns in vain (pre-votes keep it from disrupting anyone). This watcher
 * notices a group that has gone without a leader for `leaderlessTicksMax` and asks the
 * cluster, through the members its log names, to add it back: the ordinary join request,
 * which adds it as a learner where it is no member and answers `member` where it still is.
 * The learner then catches up and the promoter makes it a voter, as for any new server.
 *
 * Reusing the old data is safe: as a learner it neither votes nor counts toward commit, so
 * nothing it remembers can decide anything; the leader overwrites any entries of its log
 * that the cluster did not keep (log matching), or sends a snapshot, before it is promoted.
 *
 * A server the cluster refuses (its data dir belongs to another cluster shape, say) cannot
 * come back by waiting: `onGiveUp` is told why, and the agent stops with an error. One that
 * hears from nobody (the whole cluster is down, or this server is cut off) keeps asking.
 */

export interface RejoinLimits {
  /** A group without a known leader this long (ticks) makes the server ask to be added back. */
  readonly leaderlessTicksMax: number;
  /** Between two requests (ticks). */
  readonly requestIntervalTicks: number;
  /** One request's wait for its reply (ms). */
  readonly requestTimeoutMs: number;
  /** Refusals in a row before giving up. */
  readonly refusalsMax: number;
  /** Say that nobody answers at most this often (ticks). */
  readonly silenceLogIntervalTicks: number;
}

export const defaultRejoinLimits: RejoinLimits = {
  // Ten election timeouts at the default 10 ticks: far beyond any election, so a server that
  // merely restarted (and hears from its leaders within a few heartbeats) never asks.
  leaderlessTicksMax: 100,
  requestIntervalTicks: 40,
  requestTimeoutMs: 5_000,
  refusalsMax: 5,
  silenceLogIntervalTicks: 200,
};

export class RejoinWatcher {
  private readonly limits: RejoinLimits;
  private readonly leaderlessTicks: number[];
  private ticksToNextRequest = 0;
  private ticksToSilenceLog = 0;
  private inFlight = false;
  private refusals = 0;
  private attempt = 0;
  private stopped = false;

  constructor(
    private readonly options: {
      self: () => MemberInfo;
      host: Pick<MembershipHost, 'groupCount' | 'group'>;
      requestJoin(request: {
        to: NodeId;
        member: MemberInfo;
        groupIds: readonly number[];
        timeoutMs: number;
      }): Promise<JoinReply>;
      logger: Logger;
      /**
       * Why this server was removed from `groupId`, when it has applied its own removal (the
       * leader's appends can still reach it after it restarts), else null. Only a removal by
       * autopilot's dead-server cleanup is undone: an operator who removed it meant it.
       */
      removedBy(groupId: number): string | null;
      onGiveUp(error: ConclaveError): void;
      limits?: Partial<RejoinLimits>;
    },
  ) {
    this.limits = { ...defaultRejoinLimits, ...options.limits };
    this.leaderlessTicks = Array.from({ length: options.host.groupCount }, () => 0);
  }

  /** Once per host tick. */
  tick(): void {
    if (this.stopped) return;
    const stranded = this.strandedGroups();
    if (this.ticksToNextRequest > 0) this.ticksToNextRequest--;
    if (this.ticksToSilenceLog > 0) this.ticksToSilenceLog--;
    if (stranded.length === 0 || this.inFlight || this.ticksToNextRequest > 0) return;
    this.ticksToNextRequest = this.limits.requestIntervalTicks;
    this.inFlight = true;
    void this.ask(stranded).finally(() => {
      this.inFlight = false;
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** Groups that went leaderless for too long while this server believes itself a member. */
  private strandedGroups(): number[] {
    const { self } = this.options;
    const selfId = self().nodeId;
    const stranded: number[] = [];
    for (let groupId = 0; groupId < this.options.host.groupCount; groupId++) {
      const status = this.options.host.group(groupId).raw.status();
      const { voters, learners } = status.confState;
      const member = voters.includes(selfId) || learners.includes(selfId);
      if (!member) {
        // It knows it was removed: asking again is right only if autopilot took it for dead.
        this.leaderlessTicks[groupId] = 0;
        if (this.options.removedBy(groupId)?.startsWith(autopilotRemovalPrefix) === true)
          stranded.push(groupId);
        continue;
      }
      const ticks = status.leaderId !== null ? 0 : (this.leaderlessTicks[groupId] ?? 0) + 1;
      this.leaderlessTicks[groupId] = ticks;
      if (ticks >= this.limits.leaderlessTicksMax) stranded.push(groupId);
    }
    return stranded;
  }

  private async ask(groupIds: readonly number[]): Promise<void> {
    const { logger } = this.options;
    const member = this.options.self();
    const others = this.membersNamedBy(groupIds).filter((id) => id !== member.nodeId);
    const to = others[this.attempt++ % Math.max(1, others.length)];
    if (to === undefined) return;
    let reply: JoinReply;
    try {
      reply = await this.options.requestJoin({
        to,
        member,
        groupIds,
        timeoutMs: this.limits.requestTimeoutMs,
      });
    } catch (error) {
      this.reportSilence(`${to}: ${errorMessage(error)}`, groupIds);
      return;
    }
    const refused = reply.results.filter((r) => r.status === 'refused');
    if (refused.length > 0) {
      this.refusals++;
      const why = refused.map((r) => `group ${r.groupId}: ${r.detail ?? 'refused'}`).join('; ');
      logger.error(
        { groups: refused.map((r) => r.groupId), from: to },
        `cannot rejoin: the cluster refused to add ${member.nodeId} back (${why})`,
      );
      if (this.refusals >= this.limits.refusalsMax) {
        this.stopped = true;
        this.options.onGiveUp(
          new ConclaveError({
            code: 'JOIN_FAILED',
            message: `${member.nodeId} was removed from groups ${refused.map((r) => r.groupId).join(', ')} and the cluster refuses to add it back: ${why}`,
          }),
        );
      }
      return;
    }
    this.refusals = 0;
    const readded = reply.results.filter((r) => r.status === 'proposed' || r.status === 'pending');
    if (readded.length > 0) {
      logger.warn(
        { groups: readded.map((r) => r.groupId), via: to },
        `rejoining: groups ${readded.map((r) => r.groupId).join(', ')} had removed ${member.nodeId} while it was down; asked to be added back as a learner (promoted to voter once caught up)`,
      );
    }
  }

  /** The members this server's own log names for the groups, in a stable order. */
  private membersNamedBy(groupIds: readonly number[]): NodeId[] {
    const ids = new Set<NodeId>();
    for (const groupId of groupIds) {
      const { voters, learners } = this.options.host.group(groupId).raw.status().confState;
      for (const id of [...voters, ...learners]) ids.add(id);
    }
    return [...ids].sort();
  }

  private reportSilence(detail: string, groupIds: readonly number[]): void {
    if (this.ticksToSilenceLog > 0) return;
    this.ticksToSilenceLog = this.limits.silenceLogIntervalTicks;
    this.options.logger.warn(
      { groups: groupIds },
      `groups ${groupIds.join(', ')} have had no leader for a while and no member answers (${detail}); still asking`,
    );
  }
}
