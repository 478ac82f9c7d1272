import { readFileSync } from 'node:fs';
import { isValidNodeId } from '@conclave/raft';
import { parse as parseYaml } from 'yaml';
import { ConclaveError } from '../errors.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Another server to meet: `id@host:port` names it, a bare `host:port` does not. */
export interface JoinTarget {
  readonly nodeId: string | null;
  readonly raft: Address;
}

export interface AgentConfig {
  readonly nodeId: string;
  /** Where the WAL and snapshots live; `--dev` without one uses a fresh temporary directory. */
  readonly dataDir: string | null;
  /** The Raft (server-to-server) address. */
  readonly bind: Address;
  readonly httpAddr: Address;
  /** Wait for this many servers (this one included) before bootstrapping every group. */
  readonly bootstrapExpect: number | null;
  /** Other servers' Raft addresses (`id@host:port`), retried until reached. */
  readonly join: readonly JoinTarget[];
  readonly groups: number;
  readonly dev: boolean;
  readonly clusterId: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** `text` for people, `json` for machines; null: text when stdout is a terminal, else JSON. */
  readonly logFormat: LogFormat | null;
  /** Real time per Raft tick; the election timeout is 10 ticks. */
  readonly tickMs: number;
  /** Snapshot a group once this many entries were applied since its last snapshot. */
  readonly snapshotThresholdEntries: number;
  /** Also snapshot a group this long after its last snapshot if anything was applied (0: off). */
  readonly snapshotIntervalMs: number;
  /**
   * Entries kept behind a snapshot. Must exceed what a group commits while a snapshot is
   * sent to a follower (see docs/snapshots.md, "Log truncation policy").
   */
  readonly snapshotTrailingEntries: number;
  /**
   * Also snapshot a group once the entries applied since its last snapshot take this many
   * bytes: bounds the log held in memory when values are large.
   */
  readonly snapshotThresholdBytes: number;
  /**
   * At most this many bytes of entries kept behind a snapshot (with at most
   * snapshotTrailingEntries of them). Must exceed what a group writes, in bytes, while a
   * snapshot is sent to a follower.
   */
  readonly snapshotTrailingBytesMax: number;
}

/** How log lines are written: for people (`text`) or for machines (`json`). */
export type LogFormat = 'text' | 'json';

/** The settings as they arrive from one source, before validation. */
export type ConfigInput = Partial<Record<keyof AgentConfig | 'config', unknown>>;

export const agentLimits = {
  groupsMax: 1024,
  bootstrapExpectMax: 7,
  joinAddressesMax: 64,
  tickMsMin: 5,
  tickMsMax: 1000,
  configFileBytesMax: 1024 * 1024,
  // Below a few dozen entries a snapshot (the whole state) per handful of writes is waste.
  snapshotThresholdEntriesMin: 16,
  snapshotThresholdEntriesMax: 100_000_000,
  snapshotIntervalMsMax: 24 * 60 * 60 * 1000,
  snapshotTrailingEntriesMax: 100_000_000,
  // As for entries: a snapshot (the whole state) per few KiB written would be waste.
  snapshotThresholdBytesMin: 64 * 1024,
  // Far above any memory a server should hold in its log; a typo (a missing unit) is caught.
  snapshotThresholdBytesMax: 64 * 1024 ** 3,
  snapshotTrailingBytesMax: 64 * 1024 ** 3,
} as const;

export const agentDefaults = {
  bind: '127.0.0.1:8300',
  httpAddr: '127.0.0.1:8500',
  groups: 8,
  clusterId: 'conclave',
  logLevel: 'info',
  tickMs: 50,
  // Consul's defaults (raft_snapshot_threshold, raft_snapshot_interval, raft_trailing_logs).
  snapshotThresholdEntries: 16_384,
  snapshotIntervalMs: 120_000,
  snapshotTrailingEntries: 10_240,
  // With 512 KiB values the count bounds alone would allow 8 GiB (threshold) and 5 GiB
  // (trailing) of log per group in memory; 64 MiB each bounds a group to about 128 MiB.
  snapshotThresholdBytes: 64 * 1024 * 1024,
  snapshotTrailingBytesMax: 64 * 1024 * 1024,
} as const;

const envNames: Record<keyof AgentConfig, string> = {
  nodeId: 'CONCLAVE_NODE_ID',
  dataDir: 'CONCLAVE_DATA_DIR',
  bind: 'CONCLAVE_BIND',
  // Not CONCLAVE_HTTP_ADDR: that one names the server a client (the CLI) talks to, as
  // CONSUL_HTTP_ADDR does, and must not also move the agent's own listener.
  httpAddr: 'CONCLAVE_AGENT_HTTP_ADDR',
  bootstrapExpect: 'CONCLAVE_BOOTSTRAP_EXPECT',
  join: 'CONCLAVE_JOIN',
  groups: 'CONCLAVE_GROUPS',
  dev: 'CONCLAVE_DEV',
  clusterId: 'CONCLAVE_CLUSTER_ID',
  logLevel: 'CONCLAVE_LOG_LEVEL',
  logFormat: 'CONCLAVE_LOG_FORMAT',
  tickMs: 'CONCLAVE_TICK_MS',
  snapshotThresholdEntries: 'CONCLAVE_SNAPSHOT_THRESHOLD',
  snapshotIntervalMs: 'CONCLAVE_SNAPSHOT_INTERVAL',
  snapshotTrailingEntries: 'CONCLAVE_TRAILING_LOGS',
  snapshotThresholdBytes: 'CONCLAVE_SNAPSHOT_THRESHOLD_BYTES',
  snapshotTrailingBytesMax: 'CONCLAVE_TRAILING_LOGS_BYTES',
};

/** Settings from the environment, by their CONCLAVE_* names. */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigInput {
  const out: ConfigInput = {};
  for (const [key, name] of Object.entries(envNames) as [keyof AgentConfig, string][]) {
    const value = env[name];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

/** Settings from a JSON or YAML file (chosen by extension). */
export function configFromFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(
      'config',
      `cannot read config file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (Buffer.byteLength(text) > agentLimits.configFileBytesMax) {
    throw invalid('config', `config file ${path} is larger than ${agentLimits.configFileBytesMax} bytes`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw invalid(
      'config',
      `config file ${path} is not valid: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid('config', `config file ${path} must hold an object of settings`);
  }
  const known = new Set<string>(Object.keys(envNames));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key))
      throw invalid('config', `unknown setting "${key}" in ${path}; known: ${[...known].join(', ')}`);
  }
  return parsed as ConfigInput;
}

/** Merge sources, later ones winning, and validate the result. */
export function resolveAgentConfig(sources: readonly ConfigInput[]): AgentConfig {
  const merged: ConfigInput = {};
  for (const source of sources) {
    for (const [key, value] of Object.entries(source))
      if (value !== undefined) merged[key as keyof ConfigInput] = value;
  }
  const dev = parseBoolean('dev', merged.dev ?? false);
  const nodeId = parseString('nodeId', merged.nodeId ?? (dev ? 'dev' : undefined));
  if (!isValidNodeId(nodeId)) throw invalid('nodeId', 'node-id must be 1-64 characters of [A-Za-z0-9._:@-]');
  const dataDir =
    merged.dataDir === undefined || merged.dataDir === null ? null : parseString('dataDir', merged.dataDir);
  if (dataDir === null && !dev)
    throw invalid('dataDir', '--data-dir is required (only --dev may run without one)');
  const bootstrapExpect =
    merged.bootstrapExpect === undefined || merged.bootstrapExpect === null
      ? null
      : parseInteger('bootstrapExpect', merged.bootstrapExpect, {
          min: 1,
          max: agentLimits.bootstrapExpectMax,
        });
  const join = parseJoin(merged.join ?? []);
  if (!dev && bootstrapExpect === null && join.length === 0) {
    throw invalid(
      'bootstrapExpect',
      'give --bootstrap-expect N to form a new cluster, --join to join one, or --dev',
    );
  }
  if (bootstrapExpect !== null && bootstrapExpect > 1 && join.length === 0) {
    throw invalid(
      'join',
      `--bootstrap-expect ${bootstrapExpect} needs --join with the other servers' addresses`,
    );
  }
  return {
    nodeId,
    dataDir,
    bind: parseAddress('bind', merged.bind ?? agentDefaults.bind),
    httpAddr: parseAddress('httpAddr', merged.httpAddr ?? agentDefaults.httpAddr),
    bootstrapExpect: dev ? 1 : bootstrapExpect,
    join,
    groups: parseInteger('groups', merged.groups ?? agentDefaults.groups, {
      min: 1,
      max: agentLimits.groupsMax,
    }),
    dev,
    clusterId: parseString('clusterId', merged.clusterId ?? agentDefaults.clusterId),
    logLevel: parseLogLevel(merged.logLevel ?? agentDefaults.logLevel),
    logFormat: parseLogFormat(merged.logFormat ?? null),
    tickMs: parseInteger('tickMs', merged.tickMs ?? agentDefaults.tickMs, {
      min: agentLimits.tickMsMin,
      max: agentLimits.tickMsMax,
    }),
    snapshotThresholdEntries: parseInteger(
      'snapshotThresholdEntries',
      merged.snapshotThresholdEntries ?? agentDefaults.snapshotThresholdEntries,
      { min: agentLimits.snapshotThresholdEntriesMin, max: agentLimits.snapshotThresholdEntriesMax },
    ),
    snapshotIntervalMs: parseDurationMs(
      'snapshotIntervalMs',
      merged.snapshotIntervalMs ?? agentDefaults.snapshotIntervalMs,
      { max: agentLimits.snapshotIntervalMsMax },
    ),
    snapshotTrailingEntries: parseInteger(
      'snapshotTrailingEntries',
      merged.snapshotTrailingEntries ?? agentDefaults.snapshotTrailingEntries,
      { min: 0, max: agentLimits.snapshotTrailingEntriesMax },
    ),
    snapshotThresholdBytes: parseByteSize(
      'snapshotThresholdBytes',
      merged.snapshotThresholdBytes ?? agentDefaults.snapshotThresholdBytes,
      { min: agentLimits.snapshotThresholdBytesMin, max: agentLimits.snapshotThresholdBytesMax },
    ),
    snapshotTrailingBytesMax: parseByteSize(
      'snapshotTrailingBytesMax',
      merged.snapshotTrailingBytesMax ?? agentDefaults.snapshotTrailingBytesMax,
      { min: 0, max: agentLimits.snapshotTrailingBytesMax },
    ),
  };
}

/** The truncation policy in the host's terms: the interval becomes whole ticks (at least one). */
export function groupSnapshotLimits(config: AgentConfig): {
  snapshotThresholdEntries: number;
  snapshotThresholdBytes: number;
  snapshotTrailingEntries: number;
  snapshotTrailingBytesMax: number;
  snapshotIntervalTicks: number;
} {
  const { snapshotIntervalMs, tickMs } = config;
  const snapshotIntervalTicks =
    snapshotIntervalMs === 0 ? 0 : Math.max(1, Math.ceil(snapshotIntervalMs / tickMs));
  return {
    snapshotThresholdEntries: config.snapshotThresholdEntries,
    snapshotThresholdBytes: config.snapshotThresholdBytes,
    snapshotTrailingEntries: config.snapshotTrailingEntries,
    snapshotTrailingBytesMax: config.snapshotTrailingBytesMax,
    snapshotIntervalTicks,
  };
}

const byteUnits: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

/** A size in bytes: a number, bare digits, or digits with a unit (512KiB, 64MiB, 1GiB, 100MB). */
export function parseByteSize(setting: string, value: unknown, range: { min: number; max: number }): number {
  let bytes: number | null = null;
  if (typeof value === 'number') bytes = value;
  else if (typeof value === 'string') {
    const match = /^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/.exec(value.trim());
    const unit = byteUnits[match?.[2] ?? ''];
    if (match !== null && unit !== undefined) bytes = Number(match[1]) * unit;
  }
  if (bytes === null || !Number.isSafeInteger(bytes) || bytes < range.min || bytes > range.max) {
    throw invalid(
      setting,
      `${setting} must be a size in bytes such as 67108864, 64MiB or 1GiB, in [${range.min}, ${range.max}], got ${String(value)}`,
    );
  }
  return bytes;
}

const durationUnitsMs: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as a number of milliseconds, or a string: "120s", "2m", "1h30m", "500ms"
 * (Go's and Consul's form); bare digits are milliseconds.
 */
export function parseDurationMs(setting: string, value: unknown, range: { max: number }): number {
  let ms: number | null = null;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\d+$/.test(value)) ms = Number(value);
  else if (typeof value === 'string' && /^(\d+(ms|h|m|s))+$/.test(value)) {
    ms = 0;
    for (const [, amount, unit] of value.matchAll(/(\d+)(ms|h|m|s)/g)) {
      ms += Number(amount) * (durationUnitsMs[unit ?? ''] ?? Number.NaN);
    }
  }
  if (ms === null || !Number.isInteger(ms) || ms < 0 || ms > range.max) {
    throw invalid(
      setting,
      `${setting} must be a duration such as 120s, 2m or 1h (0 turns it off), at most ${range.max} ms, got ${String(value)}`,
    );
  }
  return ms;
}

export function parseAddress(setting: string, value: unknown): Address {
  const text = parseString(setting, value);
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw invalid(setting, `${setting} must be host:port, got "${text}"`);
  }
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

function parseJoin(value: unknown): JoinTarget[] {
  const items = Array.isArray(value) ? value : parseString('join', value).split(',');
  const targets = items.map((item) => String(item).trim()).filter((item) => item.length > 0);
  if (targets.length > agentLimits.joinAddressesMax) {
    throw invalid('join', `at most ${agentLimits.joinAddressesMax} join addresses`);
  }
  return targets.map((target) => {
    const at = target.indexOf('@');
    if (at < 0) return { nodeId: null, raft: parseAddress('join', target) };
    const nodeId = target.slice(0, at);
    if (!isValidNodeId(nodeId)) throw invalid('join', `"${nodeId}" in --join is not a valid node id`);
    return { nodeId, raft: parseAddress('join', target.slice(at + 1)) };
  });
}

function parseString(setting: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    throw invalid(setting, `${setting} must be a non-empty string`);
  return value;
}

function parseInteger(setting: string, value: unknown, range: { min: number; max: number }): number {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < range.min || number > range.max) {
    throw invalid(
      setting,
      `${setting} must be an integer in [${range.min}, ${range.max}], got ${String(value)}`,
    );
  }
  return number;
}

function parseBoolean(setting: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalid(setting, `${setting} must be true or false, got ${String(value)}`);
}

function parseLogLevel(value: unknown): AgentConfig['logLevel'] {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
  const found = levels.find((level) => level === value);
  if (found === undefined) throw invalid('logLevel', `log-level must be one of ${levels.join(', ')}`);
  return found;
}

function parseLogFormat(value: unknown): LogFormat | null {
  if (value === null || value === 'text' || value === 'json') return value;
  throw invalid('logFormat', `log-format must be text or json, got ${String(value)}`);
}

function invalid(setting: string, message: string): ConclaveError {
  return new ConclaveError({ code: 'CONFIG_INVALID', message: `${message} (setting: ${setting})` });
}
