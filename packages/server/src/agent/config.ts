import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isValidNodeId } from '@conclave/raft';
import { parse as parseYaml } from 'yaml';
import { resolveApiLimits } from '../api/limits.js';
import { ConclaveError } from '../errors.js';
import { type ApiLimits, defaultApiLimits } from '../service/types.js';
import { storedNodeId } from './identity.js';
import { type AgentOption, agentLimits, agentOptions, logLevels } from './options.js';

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
  /** Defaults to the id the data dir was created with, else the host name (made a valid id). */
  readonly nodeId: string;
  /**
   * The host name or IP other servers and clients should use to reach this one (its pod
   * DNS name in Kubernetes), with the ports of `bind` and `httpAddr`; null: the bound ones.
   */
  readonly advertise: string | null;
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
  /** Largest value of a PUT, and of a transaction's values together (bytes). */
  readonly kvValueBytesMax: number;
  /** Longest key (UTF-8 bytes). */
  readonly kvKeyBytesMax: number;
  /** Most operations in one transaction. */
  readonly txnOpsMax: number;
  /** Longest `?wait` of a blocking query (ms). */
  readonly blockingWaitMaxMs: number;
  /** Largest request line and headers of an HTTP request (bytes). */
  readonly httpHeaderBytesMax: number;
}

/** How log lines are written: for people (`text`) or for machines (`json`). */
export type LogFormat = 'text' | 'json';

/** The settings as they arrive from one source, before validation. */
export type ConfigInput = Partial<Record<keyof AgentConfig | 'config', unknown>>;

export { type AgentOption, agentDefaults, agentLimits, agentOptions } from './options.js';

const optionsByKey = new Map(agentOptions.map((option) => [option.key, option]));

/** Settings from the environment, by their CONCLAVE_* names. */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigInput {
  const out: ConfigInput = {};
  for (const { key, env: name } of agentOptions) {
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
  const known = new Set<string>(optionsByKey.keys());
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
  const dataDir =
    merged.dataDir === undefined || merged.dataDir === null ? null : parseString('dataDir', merged.dataDir);
  const nodeId = parseString(
    'nodeId',
    merged.nodeId ?? (dev ? 'dev' : ((dataDir === null ? null : storedNodeId(dataDir)) ?? hostNodeId())),
  );
  if (!isValidNodeId(nodeId)) throw invalid('nodeId', 'node-id must be 1-64 characters of [A-Za-z0-9._:@-]');
  const advertise =
    merged.advertise === undefined || merged.advertise === null
      ? null
      : parseHost('advertise', merged.advertise);
  if (dataDir === null && !dev)
    throw invalid('dataDir', '--data-dir is required (only --dev may run without one)');
  // Defaults and ranges come from each setting's row of the option table.
  const setting = (key: keyof AgentConfig): unknown => merged[key] ?? optionOf(key).default;
  const integer = (key: keyof AgentConfig) => parseInteger(key, setting(key), rangeOf(key));
  const bytes = (key: keyof AgentConfig) => parseByteSize(key, setting(key), rangeOf(key));
  const duration = (key: keyof AgentConfig) => parseDurationMs(key, setting(key), rangeOf(key));
  const bootstrapExpect =
    merged.bootstrapExpect === undefined || merged.bootstrapExpect === null
      ? null
      : integer('bootstrapExpect');
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
  const config: AgentConfig = {
    nodeId,
    advertise,
    dataDir,
    bind: parseAddress('bind', setting('bind')),
    httpAddr: parseAddress('httpAddr', setting('httpAddr')),
    bootstrapExpect: dev ? 1 : bootstrapExpect,
    join,
    groups: integer('groups'),
    dev,
    clusterId: parseString('clusterId', setting('clusterId')),
    logLevel: parseLogLevel(setting('logLevel')),
    logFormat: parseLogFormat(merged.logFormat ?? null),
    tickMs: integer('tickMs'),
    snapshotThresholdEntries: integer('snapshotThresholdEntries'),
    snapshotIntervalMs: duration('snapshotIntervalMs'),
    snapshotTrailingEntries: integer('snapshotTrailingEntries'),
    snapshotThresholdBytes: bytes('snapshotThresholdBytes'),
    snapshotTrailingBytesMax: bytes('snapshotTrailingBytesMax'),
    kvValueBytesMax: bytes('kvValueBytesMax'),
    kvKeyBytesMax: bytes('kvKeyBytesMax'),
    txnOpsMax: integer('txnOpsMax'),
    blockingWaitMaxMs: duration('blockingWaitMaxMs'),
    httpHeaderBytesMax: bytes('httpHeaderBytesMax'),
  };
  // The limits must also fit together (a row in a snapshot part, a transaction in a proposal).
  resolveApiLimits(apiLimitsOf(config));
  return config;
}

/** The API's limits from the agent's settings. */
export function apiLimitsOf(config: AgentConfig): ApiLimits {
  return {
    kvValueBytesMax: config.kvValueBytesMax,
    kvKeyBytesMax: config.kvKeyBytesMax,
    txnOpsMax: config.txnOpsMax,
    // Consul's default wait (5 minutes), unless the longest wait allowed is shorter.
    blockingWaitDefaultMs: Math.min(defaultApiLimits.blockingWaitDefaultMs, config.blockingWaitMaxMs),
    blockingWaitMaxMs: config.blockingWaitMaxMs,
  };
}

function optionOf(key: keyof AgentConfig): AgentOption {
  const option = optionsByKey.get(key);
  if (option === undefined) throw new Error(`agentOptions has no row for ${key}`);
  return option;
}

function rangeOf(key: keyof AgentConfig): { min: number; max: number } {
  const { range } = optionOf(key);
  if (range === null) throw new Error(`agentOptions gives ${key} no range`);
  return range;
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
export function parseDurationMs(
  setting: string,
  value: unknown,
  range: { min?: number; max: number },
): number {
  let ms: number | null = null;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\d+$/.test(value)) ms = Number(value);
  else if (typeof value === 'string' && /^(\d+(ms|h|m|s))+$/.test(value)) {
    ms = 0;
    for (const [, amount, unit] of value.matchAll(/(\d+)(ms|h|m|s)/g)) {
      ms += Number(amount) * (durationUnitsMs[unit ?? ''] ?? Number.NaN);
    }
  }
  const min = range.min ?? 0;
  const bounds =
    min === 0 ? ` (0 turns it off), at most ${range.max} ms` : `, from ${min} to ${range.max} ms`;
  if (ms === null || !Number.isInteger(ms) || ms < min || ms > range.max) {
    throw invalid(
      setting,
      `${setting} must be a duration such as 120s, 2m or 1h${bounds}, got ${String(value)}`,
    );
  }
  return ms;
}

/** The machine's host name as a node id: characters a node id may not hold become '-'. */
export function hostNodeId(): string {
  const id = hostname()
    .replace(/[^A-Za-z0-9._:@-]/g, '-')
    .slice(0, nodeIdLengthMax);
  return id === '' ? 'conclave' : id;
}

/** Longest node id (characters), as the Raft core validates it. */
const nodeIdLengthMax = 64;
/** Longest host name (characters), as DNS allows. */
const hostLengthMax = 253;

function parseHost(setting: string, value: unknown): string {
  const text = parseString(setting, value);
  if (text.length === 0 || text.length > hostLengthMax || /[\s/:]/.test(text.replace(/^\[.*\]$/, 'v6'))) {
    throw invalid(setting, `${setting} must be a host name or IP address (no port), got "${text}"`);
  }
  return text;
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
  const found = logLevels.find((level) => level === value);
  if (found === undefined) throw invalid('logLevel', `log-level must be one of ${logLevels.join(', ')}`);
  return found;
}

function parseLogFormat(value: unknown): LogFormat | null {
  if (value === null || value === 'text' || value === 'json') return value;
  throw invalid('logFormat', `log-format must be text or json, got ${String(value)}`);
}

function invalid(setting: string, message: string): ConclaveError {
  return new ConclaveError({ code: 'CONFIG_INVALID', message: `${message} (setting: ${setting})` });
}
