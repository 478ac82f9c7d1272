import type { AutopilotSettings, StoredAutopilot } from '../fsm/autopilot.js';

export type { AutopilotSettings, StoredAutopilot } from '../fsm/autopilot.js';

/**
 * Consul's defaults. `deadServerThresholdMs` is Conclave's (Consul learns of failed servers
 * from Serf): 0 means ten times `serverStabilizationTimeMs`, so a server is only declared
 * dead well after it could have been declared stable.
 */
export const defaultAutopilotSettings: AutopilotSettings = {
  cleanupDeadServers: true,
  lastContactThresholdMs: 200,
  maxTrailingLogs: 250,
  minQuorum: 0,
  serverStabilizationTimeMs: 10_000,
  deadServerThresholdMs: 0,
};

/** Bounds a PUT must respect: a threshold of hours would disable what it configures. */
export const autopilotBounds = {
  lastContactThresholdMsMax: 3_600_000,
  serverStabilizationTimeMsMax: 3_600_000,
  deadServerThresholdMsMax: 7 * 24 * 3_600_000,
  maxTrailingLogsMax: 1_000_000_000,
  /** Raft groups stay small; no real cluster has more voters than this. */
  minQuorumMax: 64,
} as const;

/** The dead-server threshold in effect (resolving 0 to its default). */
export function deadServerThresholdMs(settings: AutopilotSettings): number {
  return settings.deadServerThresholdMs === 0
    ? 10 * settings.serverStabilizationTimeMs
    : settings.deadServerThresholdMs;
}

/** The settings group 0 holds, or the defaults (indexes 0) when none were ever set. */
export function settingsOrDefault(stored: StoredAutopilot | null): StoredAutopilot {
  return stored ?? { settings: defaultAutopilotSettings, createIndex: 0, modifyIndex: 0 };
}
