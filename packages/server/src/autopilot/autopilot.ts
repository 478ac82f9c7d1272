import type { Logger } from 'pino';
import { isExpectedError } from '../errors.js';
import type { ConclaveFsm, FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { expectApply, expectRead, type GroupCaller } from '../service/calls.js';
import { PeerUnreachableError } from '../service/forward-client.js';
import type { OperatorService } from '../service/operator.js';
import type { GroupStatus, RemoveLimits } from '../service/status.js';
import { DeadServerCleaner } from './cleanup.js';
import { type AutopilotSettings, type StoredAutopilot, settingsOrDefault } from './config.js';
import { type ClusterHealth, clusterHealth, type GroupObservation, groupHealth } from './health.js';

export interface AutopilotLimits {
  /** How often each server checks the groups it leads for dead servers (ms). */
  readonly intervalMs: number;
  /** How long one removal may wait for a reachable majority, then to apply (ms). */
  readonly removeWaitMs: number;
  /** Servers whose health state (StableSince) is remembered; more are forgotten oldest first. */
  readonly trackedServersMax: number;
}

export const defaultAutopilotLimits: AutopilotLimits = {
  intervalMs: 500,
  removeWaitMs: 5_000,
  trackedServersMax: 1024,
};

/** Health as the API reports it: each server with the wall-clock ms since its health last changed. */
export interface AutopilotHealth extends ClusterHealth {
  readonly stableSinceMs: ReadonlyMap<string, number>;
}

/**
 * Autopilot on one server: reads and writes its settings (replicated in group 0), reports
 * health over every group, runs dead server cleanup in the groups this server leads, and
 * gives the learner promoter its stabilization policy.
 */
export class Autopilot {
  private readonly limits: AutopilotLimits;
  private readonly cleaner: DeadServerCleaner;
  private readonly stopping = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly stable = new Map<string, { healthy: boolean; sinceMs: number }>();

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      /** Group 0's state machine on this server: the settings every server applies. */
      fsm0: () => ConclaveFsm;
      caller: GroupCaller;
      operator: OperatorService;
      tickMs: number;
      logger: Logger;
      now: () => number;
      limits?: Partial<AutopilotLimits>;
    },
  ) {
    this.limits = { ...defaultAutopilotLimits, ...options.limits };
    for (const [key, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new RangeError(`${key} must be a positive integer, got ${String(value)}`);
      }
    }
    this.cleaner = new DeadServerCleaner({
      host: options.host,
      logger: options.logger,
      tickMs: options.tickMs,
      removeLimits: { waitMs: this.limits.removeWaitMs } satisfies RemoveLimits,
      signal: this.stopping.signal,
    });
    this.timer = setInterval(() => this.check(), this.limits.intervalMs);
    this.timer.unref();
  }

  /** The settings this server's replica of group 0 holds (defaults until first set). */
  settings(): AutopilotSettings {
    return settingsOrDefault(this.options.fsm0().autopilot()).settings;
  }

  /** For the learner promoter: stable for ServerStabilizationTime, within MaxTrailingLogs. */
  promotionPolicy(): { learnerStableTicks: number; learnerLagEntriesMax: number } {
    const settings = this.settings();
    return {
      learnerStableTicks: Math.ceil(settings.serverStabilizationTimeMs / this.options.tickMs),
      learnerLagEntriesMax: settings.maxTrailingLogs,
    };
  }

  /** One cleanup pass now (the timer calls it every intervalMs). */
  check(): void {
    if (this.stopping.signal.aborted) return;
    this.cleaner.check({ settings: this.settings(), nowMs: this.options.now() });
  }

  /** The settings from group 0's leader, or this server's replica with `stale`. */
  async configuration(options: { stale: boolean }): Promise<StoredAutopilot> {
    const reply = await this.options.caller.call({
      groupId: 0,
      call: {
        kind: 'read',
        query: { kind: 'autopilot-config' },
        read: { consistency: options.stale ? 'stale' : 'default', maxStaleMs: null, block: null },
      },
    });
    return settingsOrDefault(expectRead(reply).value as StoredAutopilot | null);
  }

  /**
   * Replace the settings through group 0. With `cas`, only if they were last changed at that
   * index (0: never set); returns whether they were written.
   */
  async setConfiguration(options: { settings: AutopilotSettings; cas: number | null }): Promise<boolean> {
    const reply = expectApply(
      await this.options.caller.call({
        groupId: 0,
        call: { kind: 'apply', command: { type: 'autopilot-config', ...options } },
      }),
    );
    if (reply.result.type !== 'autopilot-config') {
      throw new Error(`the state machine answered a ${reply.result.type} result to autopilot-config`);
    }
    if (reply.result.ok) {
      const term = this.options.host.group(0).raw.status().term;
      this.options.logger.info(
        {
          event: 'autopilot_config_changed',
          group: 0,
          term,
          index: reply.index,
          settings: options.settings,
          reason: 'operator autopilot set-config',
        },
        `autopilot: configuration changed at index ${reply.index} (group 0, term ${term}): operator autopilot set-config`,
      );
    }
    return reply.result.ok;
  }

  /** Health of every server in every group: leaders' views, and each server's own. */
  async health(): Promise<AutopilotHealth> {
    const settings = (await this.configuration({ stale: true })).settings;
    const members = await this.options.operator.members();
    const groups = [];
    for (let groupId = 0; groupId < this.options.host.groupCount; groupId++) {
      const observation: GroupObservation = {
        groupId,
        leader: await this.leaderView(groupId),
        ownViews: new Map(
          members.map((m) => [m.id, m.groups.find((g) => g.groupId === groupId) ?? null] as const),
        ),
      };
      const conf = this.options.host.group(groupId).raw.status().confState;
      groups.push(groupHealth(onlyMembers(observation, [...conf.voters, ...conf.learners]), settings));
    }
    const health = clusterHealth(groups);
    return { ...health, stableSinceMs: this.trackStable(health) };
  }

  stop(): void {
    this.stopping.abort();
    clearInterval(this.timer);
  }

  /** The group's leader's status, or null when it has none that can be reached. */
  private async leaderView(groupId: GroupId): Promise<GroupStatus | null> {
    // Without a known leader, report the group unhealthy now rather than wait for an election.
    if (this.options.host.group(groupId).raw.status().leaderId === null) return null;
    try {
      return await this.options.operator.groupStatus({ groupId, stale: false });
    } catch (error) {
      if (isExpectedError(error) || error instanceof PeerUnreachableError) return null;
      throw error;
    }
  }

  private trackStable(health: ClusterHealth): Map<string, number> {
    const nowMs = this.options.now();
    const since = new Map<string, number>();
    for (const server of health.servers) {
      const known = this.stable.get(server.id);
      if (known === undefined || known.healthy !== server.healthy) {
        this.stable.delete(server.id);
        this.stable.set(server.id, { healthy: server.healthy, sinceMs: nowMs });
      }
      since.set(server.id, this.stable.get(server.id)?.sinceMs ?? nowMs);
    }
    // Bounded: the oldest entries (insertion order) go first.
    for (const id of this.stable.keys()) {
      if (this.stable.size <= this.limits.trackedServersMax) break;
      this.stable.delete(id);
    }
    return since;
  }
}

/** Own views only of the group's members: the leader's list, or this server's when there is no leader. */
function onlyMembers(observation: GroupObservation, localMembers: readonly string[]): GroupObservation {
  const ids = observation.leader?.members.map((m) => m.id) ?? localMembers;
  return {
    ...observation,
    ownViews: new Map(ids.map((id) => [id, observation.ownViews.get(id) ?? null] as const)),
  };
}
