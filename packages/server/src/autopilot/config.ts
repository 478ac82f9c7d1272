import { parseGoDuration } from '../api/duration.js';
import { field, isJsonObject, type JsonObject } from '../api/json-fields.js';
import { badRequest } from '../api/query.js';
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

/** Consul's `GET /v1/operator/autopilot/configuration` body. */
export function autopilotConfigJson(stored: StoredAutopilot) {
  const s = stored.settings;
  return {
    CleanupDeadServers: s.cleanupDeadServers,
    LastContactThreshold: formatGoDuration(s.lastContactThresholdMs),
    MaxTrailingLogs: s.maxTrailingLogs,
    MinQuorum: s.minQuorum,
    ServerStabilizationTime: formatGoDuration(s.serverStabilizationTimeMs),
    DeadServerThreshold: formatGoDuration(s.deadServerThresholdMs),
    // Enterprise features Consul reports with their zero values; Conclave has no zones.
    RedundancyZoneTag: '',
    DisableUpgradeMigration: false,
    UpgradeVersionTag: '',
    CreateIndex: stored.createIndex,
    ModifyIndex: stored.modifyIndex,
  };
}

/**
 * A PUT body over the current settings: fields it names replace theirs, the others stay
 * (Consul would zero them, which silently turns health checks off). Durations are Go
 * duration strings ("200ms") or nanoseconds, as Consul's ReadableDuration reads them.
 * Every field is checked and a bad one is named (BAD_REQUEST).
 */
export function parseAutopilotBody(body: unknown, current: AutopilotSettings): AutopilotSettings {
  if (!isJsonObject(body)) throw badRequest('the body must be a JSON object of autopilot settings');
  const cleanup = field(body, 'CleanupDeadServers');
  if (cleanup !== undefined && typeof cleanup !== 'boolean')
    throw badRequest('CleanupDeadServers must be a boolean');
  const b = autopilotBounds;
  const lastContact = durationField(body, 'LastContactThreshold', {
    minMs: 1,
    maxMs: b.lastContactThresholdMsMax,
  });
  const stabilization = durationField(body, 'ServerStabilizationTime', {
    minMs: 0,
    maxMs: b.serverStabilizationTimeMsMax,
  });
  const dead = durationField(body, 'DeadServerThreshold', { minMs: 0, maxMs: b.deadServerThresholdMsMax });
  const trailing = countField(body, 'MaxTrailingLogs', b.maxTrailingLogsMax);
  const minQuorum = countField(body, 'MinQuorum', b.minQuorumMax);
  return {
    cleanupDeadServers: cleanup ?? current.cleanupDeadServers,
    lastContactThresholdMs: lastContact ?? current.lastContactThresholdMs,
    maxTrailingLogs: trailing ?? current.maxTrailingLogs,
    minQuorum: minQuorum ?? current.minQuorum,
    serverStabilizationTimeMs: stabilization ?? current.serverStabilizationTimeMs,
    deadServerThresholdMs: dead ?? current.deadServerThresholdMs,
  };
}

function durationField(
  body: JsonObject,
  name: string,
  bounds: { minMs: number; maxMs: number },
): number | undefined {
  const value = field(body, name);
  if (value === undefined) return undefined;
  const nanoseconds =
    typeof value === 'string' ? parseGoDuration(value) : typeof value === 'number' ? value : null;
  if (nanoseconds === null || !Number.isFinite(nanoseconds)) {
    throw badRequest(`${name} must be a duration such as "200ms" or "10s"`);
  }
  const ms = Math.round(nanoseconds / 1e6);
  if (ms < bounds.minMs || ms > bounds.maxMs) {
    throw badRequest(
      `${name} must be between ${formatGoDuration(bounds.minMs)} and ${formatGoDuration(bounds.maxMs)}`,
    );
  }
  return ms;
}

function countField(body: JsonObject, name: string, max: number): number | undefined {
  const value = field(body, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw badRequest(`${name} must be an integer between 0 and ${max}`);
  }
  return value;
}

/** Go's time.Duration.String() for whole milliseconds: "0s", "200ms", "1.5s", "1m40s", "1h0m0s". */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatGoDuration(-ms)}`;
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const secondsMs = ms % 60_000;
  const seconds = `${Math.floor(secondsMs / 1000)}${
    secondsMs % 1000 === 0
      ? ''
      : `.${String(secondsMs % 1000)
          .padStart(3, '0')
          .replace(/0+$/, '')}`
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}
