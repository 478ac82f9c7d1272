import { parseGoDuration } from '@conclave/protocol';
import type { FastifyReply } from 'fastify';
import type { ApiLimits, Consistency, ReadMeta, ReadRequest } from '../service/types.js';
import { badRequest, hasParam, paramValue, parseUnsigned, type Query, quote } from './query.js';

/**
 * Consul caps every blocking query's wait with up to 1/16 more, at random, so the clients
 * that started together do not all come back together (`JitterFraction`).
 */
const jitterFraction = 16;
const nanosecondsPerMs = 1e6;

/**
 * The consistency mode and blocking parameters of a read, parsed as Consul's
 * `parseConsistency` and `parseWait` do. An empty `?wait=`, `?index=` or `?max_stale=` is
 * ignored, as there.
 */
export function parseReadRequest(
  query: Query,
  options: { limits: ApiLimits; random: () => number; reply?: FastifyReply },
): ReadRequest {
  const maxStaleMs = parseMaxStale(query);
  // A positive max_stale asks for a stale read even without ?stale.
  const stale = hasParam(query, 'stale') || maxStaleMs !== null;
  const consistent = hasParam(query, 'consistent');
  if (stale && consistent) {
    throw badRequest('cannot specify ?stale (or ?max_stale) with ?consistent: conflicting semantics');
  }
  const consistency: Consistency = stale ? 'stale' : consistent ? 'consistent' : 'default';
  const block = parseBlock(query, options);
  // Only a blocking query outlives its client long enough to need telling.
  const signal = block !== null && options.reply !== undefined ? abortOnClose(options.reply) : undefined;
  return { consistency, maxStaleMs, block, signal };
}

/** Aborts when the response closes before it was sent: the client went away. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

function parseMaxStale(query: Query): number | null {
  const text = paramValue(query, 'max_stale');
  if (text === undefined || text === '') return null;
  const ns = parseGoDuration(text);
  if (ns === null) throw badRequest(`max_stale must be a duration such as "5s", got ${quote(text)}`);
  return ns > 0 ? ns / nanosecondsPerMs : null;
}

function parseBlock(
  query: Query,
  options: { limits: ApiLimits; random: () => number },
): ReadRequest['block'] {
  const waitText = paramValue(query, 'wait');
  let waitNs: number | null = null;
  if (waitText !== undefined && waitText !== '') {
    waitNs = parseGoDuration(waitText);
    if (waitNs === null) {
      throw badRequest(`wait must be a duration such as "10s", "5m" or "100ms", got ${quote(waitText)}`);
    }
  }
  const indexText = paramValue(query, 'index');
  const index = indexText === undefined || indexText === '' ? 0 : parseUnsigned(indexText, 'index');
  // Index 0 never blocks in Consul: it is what a client sends before it has seen any index.
  if (index === 0) return null;
  const { blockingWaitDefaultMs, blockingWaitMaxMs } = options.limits;
  const askedMs = waitNs === null || waitNs <= 0 ? blockingWaitDefaultMs : waitNs / nanosecondsPerMs;
  const cappedMs = Math.min(askedMs, blockingWaitMaxMs);
  const draw = options.random();
  if (!(draw >= 0 && draw < 1)) throw new Error(`random() must return a number in [0, 1), got ${draw}`);
  const jitterMs = draw * (cappedMs / jitterFraction);
  return { index, waitMs: Math.floor(cappedMs + jitterMs) };
}

const effectiveConsistency: Readonly<Record<Consistency, string>> = {
  default: 'leader',
  consistent: 'consistent',
  stale: 'stale',
};

/** Consul's `setMeta`: the headers every read answers with, 404s included. */
export function setReadMeta(reply: FastifyReply, meta: ReadMeta): void {
  // Index 0 would make a blocking client loop without ever blocking; Consul sends 1 instead.
  reply.header('X-Consul-Index', String(Math.max(1, meta.index)));
  reply.header('X-Consul-KnownLeader', meta.knownLeader ? 'true' : 'false');
  reply.header('X-Consul-LastContact', String(Math.max(0, Math.floor(meta.lastContactMs))));
  reply.header('X-Consul-Effective-Consistency', effectiveConsistency[meta.consistency]);
}
