import { assert } from '@conclave/raft';

/**
 * Autopilot's settings, replicated in group 0 so that every server, and every future
 * leader of any group, applies the same policy. Durations are whole milliseconds.
 */
export interface AutopilotSettings {
  /** Remove voters that stayed unreachable for `deadServerThresholdMs`. */
  readonly cleanupDeadServers: boolean;
  /** A server heard from the leader longer ago than this is unhealthy. */
  readonly lastContactThresholdMs: number;
  /** A server more than this many entries behind its leader is unhealthy. */
  readonly maxTrailingLogs: number;
  /** Cleanup never leaves fewer voters than this; 0 turns the floor off. */
  readonly minQuorum: number;
  /** A learner is promoted only once healthy for this long. */
  readonly serverStabilizationTimeMs: number;
  /** A voter unreachable for this long is dead (cleanup's threshold). */
  readonly deadServerThresholdMs: number;
}

/** The settings as group 0 holds them, with the Raft indexes that created and last changed them. */
export interface StoredAutopilot {
  readonly settings: AutopilotSettings;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** [cleanup, lastContactMs, maxTrailing, minQuorum, stabilizationMs, deadMs]: fixed, so equal settings encode equally. */
export type AutopilotSettingsWire = [boolean, number, number, number, number, number];

export function autopilotSettingsToWire(s: AutopilotSettings): AutopilotSettingsWire {
  const wire: AutopilotSettingsWire = [
    s.cleanupDeadServers,
    s.lastContactThresholdMs,
    s.maxTrailingLogs,
    s.minQuorum,
    s.serverStabilizationTimeMs,
    s.deadServerThresholdMs,
  ];
  checkAutopilotWire(wire);
  return wire;
}

export function autopilotSettingsFromWire(wire: unknown): AutopilotSettings {
  assert(Array.isArray(wire), 'autopilot settings are an array');
  checkAutopilotWire(wire);
  const [cleanupDeadServers, lastContactThresholdMs, maxTrailingLogs, minQuorum, stabilization, dead] = wire;
  return {
    cleanupDeadServers,
    lastContactThresholdMs,
    maxTrailingLogs,
    minQuorum,
    serverStabilizationTimeMs: stabilization,
    deadServerThresholdMs: dead,
  };
}

function checkAutopilotWire(wire: unknown[]): asserts wire is AutopilotSettingsWire {
  assert(wire.length === 6, 'autopilot settings have six fields');
  assert(typeof wire[0] === 'boolean', 'autopilot cleanupDeadServers is a boolean');
  for (const value of wire.slice(1)) {
    assert(
      typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
      () => `autopilot settings: ${String(value)} is not a safe integer >= 0`,
    );
  }
}
