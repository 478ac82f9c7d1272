/**
 * The pure parts of the snapshot benchmark: the data set it loads (every key and value is
 * derived from a seed, so verifying a restore needs no copy of a gigabyte of values), the
 * sample of keys it checks, and small parsers and summaries.
 */
import { createHash } from 'node:crypto';
import { fnv1a32 } from '@conclave/protocol';
import { percentile, round } from './bench-stats.js';

export interface DataSet {
  readonly keyCount: number;
  readonly valueBytes: number;
  readonly seed: string;
}

/** Far above the 1 GiB the benchmark is for; a typo like 1024000 fails at once. */
export const sizeMbMax = 64 * 1024;
/** Values up to half the server's 512 KiB kvValueBytesMax. */
export const valueKbMax = 256;
const keyDigits = 8;
export const keyPrefix = 'snapbench/';

const mib = 1024 * 1024;

/** The data set of `sizeMb` MiB of `valueKb` KiB values; throws on sizes out of range. */
export function dataSet(options: { sizeMb: number; valueKb: number; seed: string }): DataSet {
  const { sizeMb, valueKb, seed } = options;
  if (!Number.isInteger(sizeMb) || sizeMb < 1 || sizeMb > sizeMbMax) {
    throw new Error(`--size-mb must be an integer in [1, ${sizeMbMax}], got ${sizeMb}`);
  }
  if (!Number.isInteger(valueKb) || valueKb < 1 || valueKb > valueKbMax) {
    throw new Error(`--value-kb must be an integer in [1, ${valueKbMax}], got ${valueKb}`);
  }
  if (sizeMb * 1024 < valueKb) throw new Error(`--size-mb ${sizeMb} holds no value of ${valueKb} KiB`);
  return { keyCount: Math.floor((sizeMb * 1024) / valueKb), valueBytes: valueKb * 1024, seed };
}

export function dataBytes(set: DataSet): number {
  return set.keyCount * set.valueBytes;
}

export function benchKey(index: number): string {
  return `${keyPrefix}${String(index).padStart(keyDigits, '0')}`;
}

/**
 * Key `index`'s value: lowercase hex of SHAKE-256(seed, index). Hex carries 4 bits per byte,
 * so gzip halves it, about what real configuration (JSON, YAML) compresses to; all-zero or
 * repeated values would make the archive unrealistically small.
 */
export function benchValue(set: DataSet, index: number): Buffer {
  const hex = createHash('shake256', { outputLength: set.valueBytes / 2 })
    .update(`${set.seed}:${index}`)
    .digest('hex');
  return Buffer.from(hex, 'latin1');
}

/**
 * `count` distinct key indexes in [0, keyCount), the same for the same seed. A seeded
 * partial Fisher-Yates shuffle over a sparse map, so a large key space costs nothing.
 */
export function sampleIndexes(options: { keyCount: number; count: number; seed: string }): number[] {
  const count = Math.min(options.count, options.keyCount);
  const next = mulberry32(fnv1a32(new TextEncoder().encode(`sample:${options.seed}`)));
  const swapped = new Map<number, number>();
  const picked: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (options.keyCount - i));
    const atJ = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    picked.push(atJ);
  }
  return picked;
}

/** A small seeded PRNG in [0, 1): the sample must not depend on Math.random. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ProcMemory {
  /** Resident set now (VmRSS). */
  readonly rssBytes: number;
  /** The resident high-water mark (VmHWM): since start, or since the last clear_refs "5". */
  readonly peakRssBytes: number;
}

/** VmRSS and VmHWM from the text of /proc/<pid>/status (which gives them in kB). */
export function parseProcStatus(text: string): ProcMemory {
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (match?.[1] === undefined) throw new Error(`/proc status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50), 1),
    p99Ms: round(percentile(sorted, 99), 1),
    maxMs: round(sorted[sorted.length - 1] ?? 0, 1),
  };
}

export interface GroupKeys {
  readonly groupId: number;
  readonly keys: number;
}

/** Groups whose key count differs between two reports (a group missing from one counts as 0). */
export function groupCountMismatches(options: {
  expected: readonly GroupKeys[];
  actual: readonly GroupKeys[];
}): { groupId: number; expected: number; actual: number }[] {
  const ids = new Set([...options.expected, ...options.actual].map((g) => g.groupId));
  const keysOf = (list: readonly GroupKeys[], id: number) => list.find((g) => g.groupId === id)?.keys ?? 0;
  return [...ids]
    .sort((a, b) => a - b)
    .map((groupId) => ({
      groupId,
      expected: keysOf(options.expected, groupId),
      actual: keysOf(options.actual, groupId),
    }))
    .filter((g) => g.expected !== g.actual);
}

export const megabytes = (bytes: number): number => round(bytes / mib, 1);

/** One server's own view of one group, from `GET /v1/operator/groups/<id>?stale`. */
export interface GroupContact {
  readonly serverId: string;
  readonly groupId: number;
  readonly state: string;
  readonly term: number;
  /** Since this server heard from the group's leader; 0 on the leader; a whole number of ticks. */
  readonly lastContactMs: number;
}

/** A group status answer; throws on any other shape rather than reporting no lag. */
export function parseGroupContact(body: unknown): GroupContact {
  const [serverId, groupId, state, term, lastContactMs] = [
    'answeredBy',
    'groupId',
    'state',
    'term',
    'lastContactMs',
  ].map((name) => field(body, name));
  if (
    typeof serverId !== 'string' ||
    typeof groupId !== 'number' ||
    typeof state !== 'string' ||
    typeof term !== 'number' ||
    typeof lastContactMs !== 'number'
  ) {
    throw new Error(`group status answered ${JSON.stringify(body).slice(0, 200)}`);
  }
  return { serverId, groupId, state, term, lastContactMs };
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

/** The part of `GET /v1/agent/self` the benchmark reads. */
export interface SelfView {
  readonly nodeId: string;
  readonly groups: readonly { readonly leaderId: string | null; readonly term: number }[];
  /** The agent's event-loop delay histogram since it started (ms). */
  readonly eventLoopLagMaxMs: number;
}

export function parseSelf(body: unknown): SelfView {
  const nodeId = field(body, 'nodeId');
  const groups = field(body, 'groups');
  const lagMax = field(field(body, 'eventLoopLagMs'), 'max');
  if (typeof nodeId !== 'string' || !Array.isArray(groups) || typeof lagMax !== 'number') {
    throw new Error(`agent/self answered ${JSON.stringify(body).slice(0, 200)}`);
  }
  return {
    nodeId,
    eventLoopLagMaxMs: lagMax,
    groups: groups.map((group: unknown) => {
      const leaderId = field(group, 'leaderId');
      const term = field(group, 'term');
      if (typeof term !== 'number' || !(typeof leaderId === 'string' || leaderId === null)) {
        throw new Error(`agent/self group answered ${JSON.stringify(group).slice(0, 200)}`);
      }
      return { leaderId, term };
    }),
  };
}

/**
 * Groups whose term or leader differs between two rounds of self views (one per server,
 * same order): any such change during a save means it let an election start.
 */
export function leadershipChanges(options: {
  before: readonly SelfView[];
  after: readonly SelfView[];
}): { nodeId: string; groupId: number; termBefore: number; termAfter: number }[] {
  return options.before.flatMap((view, server) =>
    view.groups.flatMap((group, groupId) => {
      const later = options.after[server]?.groups[groupId];
      if (later === undefined) throw new Error(`no later view of group ${groupId} on ${view.nodeId}`);
      return later.term === group.term && later.leaderId === group.leaderId
        ? []
        : [{ nodeId: view.nodeId, groupId, termBefore: group.term, termAfter: later.term }];
    }),
  );
}
