// Both modules are constants only, so the CLI still loads no server code.
import { snapshotRowBytesMax } from '../fsm/snapshot-limits.js';
import { defaultApiLimits, kvKeyBytesMaxCeiling, txnOpsMaxCeiling } from '../service/types.js';
import type { AgentConfig } from './config.js';

/**
 * The agent's settings in one table: each has a `conclave agent` flag, a config-file key
 * (the AgentConfig field) and a CONCLAVE_* environment variable, and the CLI's flags, the
 * environment mapping, the config-file keys and docs/configuration.md all come from here
 * (a test checks the doc against it). This module imports only constants, so the CLI can
 * declare the agent's flags without loading the server.
 */

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
  // Node's own default (its --max-http-header-size).
  httpHeaderBytesMax: 16 * 1024,
} as const;

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export interface Range {
  readonly min: number;
  readonly max: number;
}

/**
 * How a setting is written and checked: `text` a non-empty string, `address` host:port,
 * `join` a comma-separated list (or a YAML/JSON list) of host:port or id@host:port,
 * `integer` digits, `bytes` a size with an optional unit (64MiB), `duration` Go's form
 * (120s, 2m, 1h30m; bare digits are milliseconds), `switch` true or false, `choice` one of
 * `choices`.
 */
export type OptionKind = 'text' | 'address' | 'join' | 'integer' | 'bytes' | 'duration' | 'switch' | 'choice';

export interface AgentOption {
  /** The config-file key, and the AgentConfig field it sets. */
  readonly key: keyof AgentConfig;
  readonly flag: `--${string}`;
  /** The flag's argument as help shows it; null for a switch. */
  readonly arg: string | null;
  readonly env: `CONCLAVE_${string}`;
  readonly kind: OptionKind;
  /** For integers: what one counts (ms, entries, servers); bytes and durations say so by kind. */
  readonly unit: string | null;
  /** The value used when no source sets it; null when there is none. */
  readonly default: string | number | boolean | null;
  /** Accepted values (integers, bytes and durations in ms), inclusive. */
  readonly range: Range | null;
  readonly choices: readonly string[] | null;
  /** One line for `--help` and the doc. */
  readonly summary: string;
}

type OptionRow = Pick<AgentOption, 'key' | 'flag' | 'env' | 'kind' | 'summary'> & Partial<AgentOption>;

function option(row: OptionRow): AgentOption {
  return { arg: null, unit: null, default: null, range: null, choices: null, ...row };
}

/** Every setting, in the order `conclave agent --help` lists them. */
export const agentOptions: readonly AgentOption[] = [
  option({
    key: 'nodeId',
    flag: '--node-id',
    arg: '<id>',
    env: 'CONCLAVE_NODE_ID',
    kind: 'text',
    summary:
      "this server's id, stable across restarts: 1-64 of [A-Za-z0-9._:@-] (default: the id its data dir was created with, else the host name; dev with --dev)",
  }),
  option({
    key: 'advertise',
    flag: '--advertise',
    arg: '<host>',
    env: 'CONCLAVE_ADVERTISE',
    kind: 'text',
    summary:
      "the host name or IP (no port) others reach this server at, with the --bind and --http-addr ports: a pod's DNS name when binding 0.0.0.0 (default: the bound addresses)",
  }),
  option({
    key: 'dataDir',
    flag: '--data-dir',
    arg: '<dir>',
    env: 'CONCLAVE_DATA_DIR',
    kind: 'text',
    summary: 'where the WAL and snapshots live (required; a temporary directory with --dev)',
  }),
  option({
    key: 'bind',
    flag: '--bind',
    arg: '<host:port>',
    env: 'CONCLAVE_BIND',
    kind: 'address',
    default: agentDefaults.bind,
    summary: 'the Raft address other servers reach',
  }),
  option({
    key: 'httpAddr',
    flag: '--http-addr',
    arg: '<host:port>',
    // Not CONCLAVE_HTTP_ADDR: that one names the server a client (the CLI) talks to, as
    // CONSUL_HTTP_ADDR does, and must not also move the agent's own listener.
    env: 'CONCLAVE_AGENT_HTTP_ADDR',
    kind: 'address',
    default: agentDefaults.httpAddr,
    summary: 'the HTTP API address',
  }),
  option({
    key: 'bootstrapExpect',
    flag: '--bootstrap-expect',
    arg: '<n>',
    env: 'CONCLAVE_BOOTSTRAP_EXPECT',
    kind: 'integer',
    unit: 'servers',
    range: { min: 1, max: agentLimits.bootstrapExpectMax },
    summary: 'form a new cluster of n servers (1 with --dev)',
  }),
  option({
    key: 'join',
    flag: '--join',
    arg: '<addr,...>',
    env: 'CONCLAVE_JOIN',
    kind: 'join',
    summary:
      'servers to meet, host:port or DNS names: with --bootstrap-expect, the same list on every server (itself included), or id@host:port of the others; else any member of a running cluster to join',
  }),
  option({
    key: 'groups',
    flag: '--groups',
    arg: '<n>',
    env: 'CONCLAVE_GROUPS',
    kind: 'integer',
    unit: 'groups',
    default: agentDefaults.groups,
    range: { min: 1, max: agentLimits.groupsMax },
    summary: 'Raft groups per server; fixed when a data dir is created',
  }),
  option({
    key: 'clusterId',
    flag: '--cluster-id',
    arg: '<id>',
    env: 'CONCLAVE_CLUSTER_ID',
    kind: 'text',
    default: agentDefaults.clusterId,
    summary: 'servers of other clusters are refused',
  }),
  option({
    key: 'tickMs',
    flag: '--tick-ms',
    arg: '<ms>',
    env: 'CONCLAVE_TICK_MS',
    kind: 'integer',
    unit: 'ms',
    default: agentDefaults.tickMs,
    range: { min: agentLimits.tickMsMin, max: agentLimits.tickMsMax },
    summary: 'real time per Raft tick: heartbeats every tick, elections after 10-20 ticks',
  }),
  option({
    key: 'snapshotThresholdEntries',
    flag: '--snapshot-threshold',
    arg: '<entries>',
    env: 'CONCLAVE_SNAPSHOT_THRESHOLD',
    kind: 'integer',
    unit: 'entries',
    default: agentDefaults.snapshotThresholdEntries,
    range: { min: agentLimits.snapshotThresholdEntriesMin, max: agentLimits.snapshotThresholdEntriesMax },
    summary: 'snapshot a group once this many entries were applied since its last snapshot',
  }),
  option({
    key: 'snapshotIntervalMs',
    flag: '--snapshot-interval',
    arg: '<duration>',
    env: 'CONCLAVE_SNAPSHOT_INTERVAL',
    kind: 'duration',
    default: agentDefaults.snapshotIntervalMs,
    range: { min: 0, max: agentLimits.snapshotIntervalMsMax },
    summary:
      'also snapshot a group this long after its last one if anything was applied, e.g. 120s, 2m; 0 turns it off',
  }),
  option({
    key: 'snapshotTrailingEntries',
    flag: '--trailing-logs',
    arg: '<entries>',
    env: 'CONCLAVE_TRAILING_LOGS',
    kind: 'integer',
    unit: 'entries',
    default: agentDefaults.snapshotTrailingEntries,
    range: { min: 0, max: agentLimits.snapshotTrailingEntriesMax },
    summary:
      'entries kept in the log behind a snapshot; must exceed what a group commits while a follower receives a snapshot',
  }),
  option({
    key: 'snapshotThresholdBytes',
    flag: '--snapshot-threshold-bytes',
    arg: '<size>',
    env: 'CONCLAVE_SNAPSHOT_THRESHOLD_BYTES',
    kind: 'bytes',
    default: agentDefaults.snapshotThresholdBytes,
    range: { min: agentLimits.snapshotThresholdBytesMin, max: agentLimits.snapshotThresholdBytesMax },
    summary:
      'also snapshot a group once the entries applied since its last snapshot take this many bytes, e.g. 64MiB',
  }),
  option({
    key: 'snapshotTrailingBytesMax',
    flag: '--trailing-logs-bytes',
    arg: '<size>',
    env: 'CONCLAVE_TRAILING_LOGS_BYTES',
    kind: 'bytes',
    default: agentDefaults.snapshotTrailingBytesMax,
    range: { min: 0, max: agentLimits.snapshotTrailingBytesMax },
    summary:
      'at most this many bytes of entries kept behind a snapshot, with --trailing-logs; must exceed what a group writes while a follower receives a snapshot',
  }),
  option({
    key: 'kvValueBytesMax',
    flag: '--kv-value-bytes-max',
    arg: '<size>',
    env: 'CONCLAVE_KV_VALUE_BYTES_MAX',
    kind: 'bytes',
    default: defaultApiLimits.kvValueBytesMax,
    // A key's row (value, 3 x key, session) must fit a snapshot part; checked with the key limit.
    range: { min: 1, max: snapshotRowBytesMax },
    summary:
      'largest value of a PUT, and of the values of one transaction together; with 3 x --kv-key-bytes-max it must fit a snapshot part',
  }),
  option({
    key: 'kvKeyBytesMax',
    flag: '--kv-key-bytes-max',
    arg: '<size>',
    env: 'CONCLAVE_KV_KEY_BYTES_MAX',
    kind: 'bytes',
    default: defaultApiLimits.kvKeyBytesMax,
    range: { min: 1, max: kvKeyBytesMaxCeiling },
    summary: 'longest key, in UTF-8 bytes',
  }),
  option({
    key: 'txnOpsMax',
    flag: '--txn-ops-max',
    arg: '<n>',
    env: 'CONCLAVE_TXN_OPS_MAX',
    kind: 'integer',
    unit: 'operations',
    default: defaultApiLimits.txnOpsMax,
    range: { min: 1, max: txnOpsMaxCeiling },
    summary:
      'most operations in one transaction; the largest transaction (its keys and values) must fit one Raft proposal of 1MiB',
  }),
  option({
    key: 'blockingWaitMaxMs',
    flag: '--blocking-wait-max',
    arg: '<duration>',
    env: 'CONCLAVE_BLOCKING_WAIT_MAX',
    kind: 'duration',
    default: defaultApiLimits.blockingWaitMaxMs,
    // Below a second a blocking query is polling; above an hour a dead client holds its request long.
    range: { min: 1000, max: 60 * 60_000 },
    summary:
      'longest ?wait of a blocking query (longer ones are cut to it, plus up to 1/16 of jitter); the default wait is 5m, or this if shorter',
  }),
  option({
    key: 'httpHeaderBytesMax',
    flag: '--http-header-bytes-max',
    arg: '<size>',
    env: 'CONCLAVE_HTTP_HEADER_BYTES_MAX',
    kind: 'bytes',
    default: agentDefaults.httpHeaderBytesMax,
    // Below 1 KiB ordinary clients' headers would not fit; above 1 MiB a client could make
    // the server buffer a lot before it is refused.
    range: { min: 1024, max: 1024 * 1024 },
    summary: 'largest request line and headers of one HTTP request; larger ones are refused with 431',
  }),
  option({
    key: 'logLevel',
    flag: '--log-level',
    arg: '<level>',
    env: 'CONCLAVE_LOG_LEVEL',
    kind: 'choice',
    default: agentDefaults.logLevel,
    choices: logLevels,
    summary: 'the least severe log lines written',
  }),
  option({
    key: 'logFormat',
    flag: '--log-format',
    arg: '<format>',
    env: 'CONCLAVE_LOG_FORMAT',
    kind: 'choice',
    choices: ['text', 'json'],
    summary: 'text lines for people or JSON for machines (default: text on a terminal, JSON otherwise)',
  }),
  option({
    key: 'dev',
    flag: '--dev',
    env: 'CONCLAVE_DEV',
    kind: 'switch',
    default: false,
    summary: 'one server that elects itself; a temporary data dir unless --data-dir is given',
  }),
];

const binaryUnits = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

const durationUnits = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;

/**
 * A value as a person writes it for this setting, in a form the setting accepts: sizes in
 * the largest binary unit that divides them (64MiB), durations likewise (120000 -> 2m).
 */
export function formatOptionValue(option: AgentOption, value: string | number | boolean): string {
  if (typeof value !== 'number' || value === 0) return String(value);
  const units = option.kind === 'bytes' ? binaryUnits : option.kind === 'duration' ? durationUnits : [];
  for (const [unit, size] of units) if (value % size === 0) return `${value / size}${unit}`;
  return option.kind === 'duration' ? `${value}ms` : String(value);
}
