import { formatGoDuration, parseGoDuration } from '@conclave/protocol';
import { type AutopilotSettings, autopilotBounds, type StoredAutopilot } from '../autopilot/config.js';
import { field, isJsonObject, type JsonObject } from './json-fields.js';
import { badRequest } from './query.js';

/**
 * Autopilot's settings on the wire: Consul's configuration body, read and written. The
 * settings themselves, their defaults and bounds belong to autopilot (`autopilot/config.ts`).
 */

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
