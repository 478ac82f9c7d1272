import { formatGoDuration } from '@conclave/protocol';
import { describe, expect, it } from 'vitest';
import { deadServerThresholdMs, defaultAutopilotSettings, settingsOrDefault } from '../autopilot/config.js';
import { ConclaveError } from '../errors.js';
import { autopilotConfigJson, parseAutopilotBody } from './autopilot-json.js';

const defaults = defaultAutopilotSettings;

function refusal(body: unknown): string {
  try {
    parseAutopilotBody(body, defaults);
  } catch (error) {
    if (error instanceof ConclaveError && error.code === 'BAD_REQUEST') return error.message;
    throw error;
  }
  throw new Error('the body was accepted');
}

describe('autopilot configuration', () => {
  it("has Consul's defaults, in Consul's JSON shape, before anything is set", () => {
    expect(autopilotConfigJson(settingsOrDefault(null))).toEqual({
      CleanupDeadServers: true,
      LastContactThreshold: '200ms',
      MaxTrailingLogs: 250,
      MinQuorum: 0,
      ServerStabilizationTime: '10s',
      DeadServerThreshold: '0s',
      RedundancyZoneTag: '',
      DisableUpgradeMigration: false,
      UpgradeVersionTag: '',
      CreateIndex: 0,
      ModifyIndex: 0,
    });
    expect(deadServerThresholdMs(defaults)).toBe(100_000);
    expect(deadServerThresholdMs({ ...defaults, deadServerThresholdMs: 3000 })).toBe(3000);
  });

  it('formats durations as Go does', () => {
    expect([0, 5, 200, 1000, 1500, 10_000, 100_000, 3_600_000, 3_661_001].map(formatGoDuration)).toEqual([
      '0s',
      '5ms',
      '200ms',
      '1s',
      '1.5s',
      '10s',
      '1m40s',
      '1h0m0s',
      '1h1m1.001s',
    ]);
  });

  it('reads Go duration strings and nanoseconds, matching names case-insensitively, keeping absent fields', () => {
    const parsed = parseAutopilotBody(
      { lastcontactthreshold: '1s', ServerStabilizationTime: 2e9, MinQuorum: 3, CleanupDeadServers: false },
      defaults,
    );
    expect(parsed).toEqual({
      ...defaults,
      lastContactThresholdMs: 1000,
      serverStabilizationTimeMs: 2000,
      minQuorum: 3,
      cleanupDeadServers: false,
    });
    expect(parseAutopilotBody({}, parsed)).toEqual(parsed);
    expect(parseAutopilotBody({ DeadServerThreshold: '1m', MaxTrailingLogs: 0 }, defaults)).toMatchObject({
      deadServerThresholdMs: 60_000,
      maxTrailingLogs: 0,
    });
  });

  it('refuses a bad field, naming it', () => {
    expect(refusal([])).toMatch(/JSON object/);
    expect(refusal({ CleanupDeadServers: 'yes' })).toMatch(/^CleanupDeadServers/);
    expect(refusal({ LastContactThreshold: 'soon' })).toMatch(/^LastContactThreshold must be a duration/);
    expect(refusal({ LastContactThreshold: '0s' })).toMatch(
      /^LastContactThreshold must be between 1ms and 1h0m0s/,
    );
    expect(refusal({ ServerStabilizationTime: '2h' })).toMatch(/^ServerStabilizationTime/);
    expect(refusal({ DeadServerThreshold: '-1s' })).toMatch(/^DeadServerThreshold/);
    expect(refusal({ MaxTrailingLogs: -1 })).toMatch(/^MaxTrailingLogs must be an integer/);
    expect(refusal({ MinQuorum: 1.5 })).toMatch(/^MinQuorum/);
    expect(refusal({ MinQuorum: 65 })).toMatch(/^MinQuorum must be an integer between 0 and 64/);
  });
});
