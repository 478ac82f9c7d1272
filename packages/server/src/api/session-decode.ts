import { parseGoDuration } from '@conclave/protocol';
import {
  type SessionBehavior,
  type SessionSpec,
  sessionLockDelayDefaultMs,
  sessionTtlSecondsMax,
  sessionTtlSecondsMin,
} from '../service/types.js';
import { field, isJsonObject, type JsonObject, parseJsonBody, stringField } from './json-fields.js';
import { badRequest, quote } from './query.js';

/** Largest `/v1/session/create` body (bytes): a handful of short fields. */
export const sessionBodyBytesMax = 64 * 1024;
/** Longest session Name or Node (bytes). */
export const sessionTextBytesMax = 1024;
/** Consul's MaxLockDelay: a longer lock delay would lock keys out for minutes after a crash. */
export const sessionLockDelayMsMax = 60_000;

/**
 * Consul reads a LockDelay under 1000 (as nanoseconds) as seconds: people send 15 meaning
 * 15s, and 15ns would be no delay at all (`lockDelayMinThreshold`).
 */
const lockDelaySecondsBelowNs = 1000;
const nanosecondsPerMs = 1e6;
const nanosecondsPerSecond = 1e9;

/**
 * A `/v1/session/create` body as a SessionSpec, with Consul's defaults (the agent's node,
 * release, 15s lock delay, no TTL) for what it leaves out. Checks are accepted and ignored:
 * Conclave runs no health checks, so TTLs are what ends sessions.
 */
export function decodeSessionCreate(body: unknown, options: { nodeName: string }): Omit<SessionSpec, 'id'> {
  const parsed = parseJsonBody(body) ?? {};
  if (!isJsonObject(parsed)) throw badRequest('the body must be a JSON object');
  return {
    name: boundedText(parsed, 'Name') ?? '',
    node: decodeNode(parsed, options.nodeName),
    ttlSeconds: decodeTtl(stringField(parsed, 'TTL', '') ?? ''),
    behavior: decodeBehavior(stringField(parsed, 'Behavior', '') ?? ''),
    lockDelayMs: decodeLockDelay(field(parsed, 'LockDelay')),
  };
}

function boundedText(body: JsonObject, name: string): string | undefined {
  const text = stringField(body, name, '');
  if (text !== undefined && Buffer.byteLength(text) > sessionTextBytesMax) {
    throw badRequest(`${name} must be at most ${sessionTextBytesMax} bytes`);
  }
  return text;
}

function decodeNode(body: JsonObject, nodeName: string): string {
  const node = boundedText(body, 'Node');
  if (node === '') throw badRequest('Node must not be empty; leave it out to use this server');
  return node ?? nodeName;
}

function decodeBehavior(text: string): SessionBehavior {
  if (text === '' || text === 'release') return 'release';
  if (text === 'delete') return 'delete';
  throw badRequest(`Behavior must be "release" or "delete", got ${quote(text)}`);
}

/** Whole or fractional seconds; 0 (or "", "0s") means no TTL. */
function decodeTtl(text: string): number {
  if (text === '') return 0;
  const ns = parseGoDuration(text);
  if (ns === null) throw badRequest(`TTL must be a duration such as "15s", got ${quote(text)}`);
  if (ns === 0) return 0;
  const seconds = ns / nanosecondsPerSecond;
  if (!(seconds >= sessionTtlSecondsMin && seconds <= sessionTtlSecondsMax)) {
    throw badRequest(
      `TTL must be between ${sessionTtlSecondsMin}s and ${sessionTtlSecondsMax}s (or empty for none), got ${quote(text)}`,
    );
  }
  return seconds;
}

/** A Go duration string or a number of nanoseconds, either under 1000 meaning seconds. */
function decodeLockDelay(value: unknown): number {
  if (value === undefined) return sessionLockDelayDefaultMs;
  let ns: number | null;
  if (typeof value === 'string') ns = parseGoDuration(value);
  else if (typeof value === 'number' && Number.isFinite(value)) ns = Math.trunc(value);
  else ns = null;
  if (ns === null) throw badRequest('LockDelay must be a duration such as "15s" or a number of nanoseconds');
  if (ns < lockDelaySecondsBelowNs) ns *= nanosecondsPerSecond;
  const ms = Math.round(ns / nanosecondsPerMs);
  if (ms < 0 || ms > sessionLockDelayMsMax) {
    throw badRequest(`LockDelay must be between 0s and ${sessionLockDelayMsMax / 1000}s`);
  }
  return ms;
}
