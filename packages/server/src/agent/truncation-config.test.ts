import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  agentDefaults,
  configFromEnv,
  configFromFile,
  groupSnapshotLimits,
  parseByteSize,
  parseDurationMs,
  resolveAgentConfig,
} from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-truncation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('log truncation settings', () => {
  it("default to Consul's threshold, interval and trailing logs", () => {
    const config = resolveAgentConfig([{ dev: true }]);
    expect(config).toMatchObject({
      snapshotThresholdEntries: 16_384,
      snapshotIntervalMs: 120_000,
      snapshotTrailingEntries: 10_240,
    });
    expect(agentDefaults.snapshotTrailingEntries).toBe(10_240);
  });

  it('bound the log by bytes too, 64 MiB by default for the threshold and the trailing entries', () => {
    const config = resolveAgentConfig([{ dev: true }]);
    expect(config).toMatchObject({
      snapshotThresholdBytes: 64 * 1024 ** 2,
      snapshotTrailingBytesMax: 64 * 1024 ** 2,
    });
  });

  it('take the byte bounds from a file, the environment and flags, with units', () => {
    const file = join(dir, 'bytes.json');
    writeFileSync(
      file,
      JSON.stringify({ dev: true, snapshotThresholdBytes: '32MiB', snapshotTrailingBytesMax: 1_000_000 }),
    );
    expect(resolveAgentConfig([configFromFile(file)])).toMatchObject({
      snapshotThresholdBytes: 32 * 1024 ** 2,
      snapshotTrailingBytesMax: 1_000_000,
    });
    const env = configFromEnv({
      CONCLAVE_SNAPSHOT_THRESHOLD_BYTES: '1GiB',
      CONCLAVE_TRAILING_LOGS_BYTES: '512KiB',
    });
    expect(env).toEqual({ snapshotThresholdBytes: '1GiB', snapshotTrailingBytesMax: '512KiB' });
    const merged = resolveAgentConfig([configFromFile(file), env, { snapshotTrailingBytesMax: '0' }]);
    expect(merged).toMatchObject({ snapshotThresholdBytes: 1024 ** 3, snapshotTrailingBytesMax: 0 });
  });

  it.each([
    ['67108864', 67_108_864],
    ['64MiB', 64 * 1024 ** 2],
    ['512KiB', 512 * 1024],
    ['2GiB', 2 * 1024 ** 3],
    ['100MB', 100_000_000],
    ['7B', 7],
    [4096, 4096],
  ])('parses the size %j as %i bytes', (text, bytes) => {
    expect(parseByteSize('snapshotTrailingBytesMax', text, { min: 0, max: 64 * 1024 ** 3 })).toBe(bytes);
  });

  it('come from a file, the environment and flags, later sources winning', () => {
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      'dev: true\nsnapshotThresholdEntries: 4096\nsnapshotIntervalMs: 30s\nsnapshotTrailingEntries: 2000\n',
    );
    const env = configFromEnv({
      CONCLAVE_SNAPSHOT_INTERVAL: '5m',
      CONCLAVE_TRAILING_LOGS: '3000',
      CONCLAVE_SNAPSHOT_THRESHOLD: '',
    });
    const fromFile = resolveAgentConfig([configFromFile(file)]);
    expect(fromFile).toMatchObject({
      snapshotThresholdEntries: 4096,
      snapshotIntervalMs: 30_000,
      snapshotTrailingEntries: 2000,
    });
    const merged = resolveAgentConfig([configFromFile(file), env, { snapshotTrailingEntries: '5000' }]);
    expect(merged).toMatchObject({
      snapshotThresholdEntries: 4096,
      snapshotIntervalMs: 300_000,
      snapshotTrailingEntries: 5000,
    });
  });

  it.each([
    ['120s', 120_000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['0', 0],
    ['2500', 2500],
    [750, 750],
  ])('parses the duration %j as %i ms', (text, ms) => {
    expect(parseDurationMs('snapshotIntervalMs', text, { max: 86_400_000 })).toBe(ms);
  });

  it.each([
    [
      { dev: true, snapshotThresholdEntries: 8 },
      /snapshotThresholdEntries must be an integer in \[16, .*setting: snapshotThresholdEntries/,
    ],
    [{ dev: true, snapshotThresholdEntries: 'many' }, /setting: snapshotThresholdEntries/],
    [
      { dev: true, snapshotTrailingEntries: -1 },
      /snapshotTrailingEntries must be an integer in \[0, .*setting: snapshotTrailingEntries/,
    ],
    [{ dev: true, snapshotTrailingEntries: 1e9 }, /setting: snapshotTrailingEntries/],
    [{ dev: true, snapshotIntervalMs: '2 minutes' }, /must be a duration .*setting: snapshotIntervalMs/],
    [{ dev: true, snapshotIntervalMs: '25h' }, /at most 86400000 ms.*setting: snapshotIntervalMs/],
    [{ dev: true, snapshotIntervalMs: 1.5 }, /setting: snapshotIntervalMs/],
    [{ dev: true, snapshotIntervalMs: '10x' }, /setting: snapshotIntervalMs/],
    [
      { dev: true, snapshotThresholdBytes: '1KiB' },
      /snapshotThresholdBytes must be a size in bytes .* in \[65536, .*setting: snapshotThresholdBytes/,
    ],
    [{ dev: true, snapshotThresholdBytes: '65GiB' }, /setting: snapshotThresholdBytes/],
    [{ dev: true, snapshotTrailingBytesMax: '64 MB of logs' }, /setting: snapshotTrailingBytesMax/],
    [{ dev: true, snapshotTrailingBytesMax: '1TiB' }, /setting: snapshotTrailingBytesMax/],
    [{ dev: true, snapshotTrailingBytesMax: -1 }, /setting: snapshotTrailingBytesMax/],
    [{ dev: true, snapshotTrailingBytesMax: 1.5 }, /setting: snapshotTrailingBytesMax/],
  ])('refuses %j with an error naming the setting', (input, message) => {
    expect(() => resolveAgentConfig([input])).toThrow(message);
  });

  it('becomes whole host ticks for the groups, the interval rounded up and 0 kept off', () => {
    const base = {
      dev: true,
      tickMs: 50,
      snapshotThresholdEntries: 100,
      snapshotTrailingEntries: 40,
      snapshotThresholdBytes: '1MiB',
      snapshotTrailingBytesMax: '2MiB',
    };
    expect(groupSnapshotLimits(resolveAgentConfig([{ ...base, snapshotIntervalMs: '120s' }]))).toEqual({
      snapshotThresholdEntries: 100,
      snapshotThresholdBytes: 1024 ** 2,
      snapshotTrailingEntries: 40,
      snapshotTrailingBytesMax: 2 * 1024 ** 2,
      snapshotIntervalTicks: 2400,
    });
    expect(
      groupSnapshotLimits(resolveAgentConfig([{ ...base, snapshotIntervalMs: 70 }])).snapshotIntervalTicks,
    ).toBe(2);
    expect(
      groupSnapshotLimits(resolveAgentConfig([{ ...base, snapshotIntervalMs: 1 }])).snapshotIntervalTicks,
    ).toBe(1);
    expect(
      groupSnapshotLimits(resolveAgentConfig([{ ...base, snapshotIntervalMs: 0 }])).snapshotIntervalTicks,
    ).toBe(0);
  });
});
