import { ConfChangeType, type NodeId, RaftErrorCode } from '@conclave/raft';
import type { Logger } from 'pino';
import type { GroupId } from '../host/ports.js';
import type { MembershipHost } from './membership.js';

export interface PromotionLimits {
  /**
   * A learner becomes a voter once it has been caught up and active for this many
   * consecutive ticks of its group's leader: a server that only just caught up, or that
   * keeps falling behind, would slow every commit as a voter.
   */
  readonly learnerStableTicks: number;
  /** Caught up: the learner's log matches the leader's to within this many entries. */
  readonly learnerLagEntriesMax: number;
  /**
   * Active: the leader heard from the learner within this many ticks. The core clears its
   * `recentActive` flag every election timeout, so one tick without it means nothing.
   */
  readonly learnerActiveWindowTicks: number;
}

/** 200 ticks is 10 s at the default tick of 50 ms. */
export const defaultPromotionLimits: PromotionLimits = {
  learnerStableTicks: 200,
  learnerLagEntriesMax: 64,
  learnerActiveWindowTicks: 20,
};

/**
 * The part of the limits autopilot sets at run time (ServerStabilizationTime and
 * MaxTrailingLogs, replicated in group 0), read every tick so a change applies at once.
 */
export type PromotionPolicy = () => Partial<
  Pick<PromotionLimits, 'learnerStableTicks' | 'learnerLagEntriesMax'>
>;

interface LearnerWatch {
  stableTicks: number;
  lastActiveTick: number;
}

/**
 * Promotes learners to voters, in the groups this server leads. Every learner in Conclave is
 * a server on its way in (joining adds it as a learner so it catches up without counting
 * toward quorums), so each one is promoted once it is caught up and has stayed so for
 * `learnerStableTicks`. A new leader starts counting from zero.
 */
export class LearnerPromoter {
  private readonly limits: PromotionLimits;
  private readonly watches = new Map<GroupId, Map<NodeId, LearnerWatch>>();
  private ticks = 0;

  constructor(
    private readonly options: {
      host: MembershipHost;
      logger: Logger;
      limits?: Partial<PromotionLimits>;
      /**
       * The stability limits each tick (autopilot's settings), over the defaults; limits set
       * explicitly above (tests, operators' tuning) win over it.
       */
      policy?: PromotionPolicy;
    },
  ) {
    this.limits = { ...defaultPromotionLimits, ...options.limits };
    for (const [key, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RangeError(`${key} must be a non-negative integer, got ${String(value)}`);
      }
    }
  }

  /** Called once per host tick. */
  tick(): void {
    this.ticks++;
    const { host } = this.options;
    for (let groupId = 0; groupId < host.groupCount; groupId++) this.tickGroup(groupId);
  }

  private tickGroup(groupId: GroupId): void {
    const status = this.options.host.group(groupId).raw.status();
    const limits = { ...defaultPromotionLimits, ...this.options.policy?.(), ...this.options.limits };
    const learners = status.confState.learners;
    if (status.role !== 'leader' || status.progress === null || learners.length === 0) {
      this.watches.delete(groupId);
      return;
    }
    let watches = this.watches.get(groupId);
    if (watches === undefined) {
      watches = new Map();
      this.watches.set(groupId, watches);
    }
    for (const id of [...watches.keys()]) if (!learners.includes(id)) watches.delete(id);
    for (const learner of learners) {
      const progress = status.progress.get(learner);
      if (progress === undefined) continue;
      let watch = watches.get(learner);
      if (watch === undefined) {
        watch = { stableTicks: 0, lastActiveTick: this.ticks };
        watches.set(learner, watch);
      }
      if (progress.recentActive) watch.lastActiveTick = this.ticks;
      const caughtUp = progress.match + limits.learnerLagEntriesMax >= status.lastIndex;
      const active = this.ticks - watch.lastActiveTick <= this.limits.learnerActiveWindowTicks;
      watch.stableTicks = caughtUp && active ? watch.stableTicks + 1 : 0;
      if (watch.stableTicks >= limits.learnerStableTicks)
        this.promote({ groupId, learner, watch, term: status.term, stableTicks: limits.learnerStableTicks });
    }
  }

  private promote(options: {
    groupId: GroupId;
    learner: NodeId;
    watch: LearnerWatch;
    term: number;
    stableTicks: number;
  }): void {
    const { groupId, learner, watch, term } = options;
    const proposed = this.options.host.proposeConfChange({
      groupId,
      change: { type: ConfChangeType.AddVoter, nodeId: learner },
    });
    if (proposed.ok) {
      // Counting again from zero: the learner stays one until the change is applied.
      watch.stableTicks = 0;
      const reason = `caught up for ${options.stableTicks} ticks`;
      this.options.logger.info(
        { event: 'server_promoting', group: groupId, server: learner, term, index: proposed.index, reason },
        `group ${groupId}: promoting learner ${learner} to voter (term ${term}): ${reason}`,
      );
      return;
    }
    const code = proposed.error.code;
    // Another change or a transfer is under way: try again next tick, still stable.
    if (code === RaftErrorCode.ConfChangePending || code === RaftErrorCode.TransferInProgress) return;
    watch.stableTicks = 0;
    this.options.logger.warn(
      {
        event: 'server_not_promoted',
        group: groupId,
        server: learner,
        term,
        code,
        reason: proposed.error.message,
      },
      `group ${groupId}: could not promote learner ${learner} (term ${term}): ${proposed.error.message}`,
    );
  }
}
