import type { FastifyReply } from 'fastify';
import type { KvEntry, RaftServer, SessionEntry } from '../service/types.js';

/**
 * Consul's JSON, as Go's encoding/json writes it: compact, or indented by four spaces and
 * ending in a newline with `?pretty`; `<`, `>`, `&`, U+2028 and U+2029 escaped (Go escapes
 * them for HTML safety); Content-Type `application/json` without a charset.
 */
const goEscapes: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

export function consulJson(value: unknown, options: { pretty: boolean }): string {
  const text = options.pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value);
  // These characters can only occur inside JSON strings, so replacing them everywhere is safe.
  return text.replace(/[<>&\u2028\u2029]/g, (c) => goEscapes[c] ?? c);
}

export function sendJson(reply: FastifyReply, value: unknown, status = 200): FastifyReply {
  const query = reply.request.query;
  const pretty = typeof query === 'object' && query !== null && Object.hasOwn(query, 'pretty');
  // As bytes: fastify would append "; charset=utf-8" to a JSON string's type, which Consul does not.
  return reply
    .code(status)
    .type('application/json')
    .send(Buffer.from(consulJson(value, { pretty })));
}

/**
 * A KV entry in Consul's field order (Go's DirEntry). Session is omitted when no session
 * holds the key (`json:",omitempty"`); an empty value is `null`, as Consul stores an empty
 * body as a nil byte slice.
 */
export function kvEntryJson(entry: KvEntry) {
  return {
    LockIndex: entry.lockIndex,
    Key: entry.key,
    Flags: entry.flags,
    Value: entry.value.length === 0 ? null : Buffer.from(entry.value).toString('base64'),
    ...(entry.session !== null && entry.session !== '' ? { Session: entry.session } : {}),
    CreateIndex: entry.createIndex,
    ModifyIndex: entry.modifyIndex,
  };
}

const nanosecondsPerMs = 1e6;

/**
 * A session in Consul's shape. LockDelay is a Go Duration (nanoseconds); TTL is a Go
 * duration string, '' for none. Conclave runs no health checks, so NodeChecks is empty
 * and ServiceChecks null.
 */
export function sessionJson(session: SessionEntry) {
  return {
    ID: session.id,
    Name: session.name,
    Node: session.node,
    LockDelay: Math.round(session.lockDelayMs * nanosecondsPerMs),
    Behavior: session.behavior,
    TTL: session.ttlSeconds === 0 ? '' : `${session.ttlSeconds}s`,
    NodeChecks: [],
    ServiceChecks: null,
    CreateIndex: session.createIndex,
    ModifyIndex: session.modifyIndex,
  };
}

/** Consul names its Raft protocol version as a string; 3 is the one with server IDs. */
const raftProtocolVersion = '3';

export function raftServerJson(server: RaftServer) {
  return {
    ID: server.id,
    Node: server.node,
    Address: server.address,
    Leader: server.leader,
    Voter: server.voter,
    ProtocolVersion: raftProtocolVersion,
  };
}
