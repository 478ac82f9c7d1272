import { parseGoDuration } from '@conclave/protocol';
import { badResponse, excerpt } from './errors.js';
import type { HttpAnswer } from './http.js';
import type {
  AgentGroup,
  AgentSelf,
  KvPair,
  RaftConfiguration,
  RaftPeer,
  ReadMeta,
  SessionBehavior,
  SessionInfo,
  TxnResult,
} from './types.js';

/**
 * Answers checked field by field: a server of another version, or something that is not
 * a Conclave server at all, fails with BAD_RESPONSE naming the field, never with a
 * TypeError deep in a caller.
 */
type Json = Readonly<Record<string, unknown>>;

export function parseJson(answer: HttpAnswer): unknown {
  const text = answer.body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw badResponse(`the answer is not JSON: ${excerpt(text)}`, answer.status);
  }
}

export function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badResponse(`${what} is not a JSON object`);
  }
  return value as Json;
}

export function array(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw badResponse(`${what} is not a JSON array`);
  return value;
}

function natural(o: Json, name: string, what: string): number {
  const value = o[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badResponse(`${what}.${name} is not a non-negative integer`);
  }
  return value;
}

export function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw badResponse(`${what} is not a string`);
  return value;
}

function bool(o: Json, name: string, what: string): boolean {
  const value = o[name];
  if (typeof value !== 'boolean') throw badResponse(`${what}.${name} is not a boolean`);
  return value;
}

/** A string field that may be absent or null. */
function optionalText(o: Json, name: string, what: string): string | null {
  const value = o[name];
  return value === undefined || value === null ? null : text(value, `${what}.${name}`);
}

export function stringList(value: unknown, what: string): string[] {
  return array(value, what).map((item, i) => text(item, `${what}[${i}]`));
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

export function kvPair(value: unknown, what = 'KV entry'): KvPair {
  const o = object(value, what);
  const raw = optionalText(o, 'Value', what) ?? '';
  if (raw.length % 4 !== 0 || !base64Pattern.test(raw)) throw badResponse(`${what}.Value is not base64`);
  const session = optionalText(o, 'Session', what);
  return {
    key: text(o.Key, `${what}.Key`),
    value: new Uint8Array(Buffer.from(raw, 'base64')),
    flags: natural(o, 'Flags', what),
    createIndex: natural(o, 'CreateIndex', what),
    modifyIndex: natural(o, 'ModifyIndex', what),
    lockIndex: natural(o, 'LockIndex', what),
    session: session === '' ? null : session,
  };
}

export function kvPairs(value: unknown): KvPair[] {
  return array(value, 'KV list').map((item, i) => kvPair(item, `KV list[${i}]`));
}

const nanosecondsPerMs = 1e6;
const nanosecondsPerSecond = 1e9;

export function sessionInfo(value: unknown, what = 'session'): SessionInfo {
  const o = object(value, what);
  const ttl = optionalText(o, 'TTL', what) ?? '';
  const ttlNs = ttl === '' ? 0 : parseGoDuration(ttl);
  if (ttlNs === null) throw badResponse(`${what}.TTL is not a duration: ${excerpt(ttl)}`);
  const behavior = optionalText(o, 'Behavior', what) ?? 'release';
  if (behavior !== 'release' && behavior !== 'delete') throw badResponse(`${what}.Behavior is unknown`);
  return {
    id: text(o.ID, `${what}.ID`),
    name: optionalText(o, 'Name', what) ?? '',
    node: optionalText(o, 'Node', what) ?? '',
    ttlSeconds: ttlNs / nanosecondsPerSecond,
    behavior: behavior satisfies SessionBehavior,
    lockDelayMs: natural(o, 'LockDelay', what) / nanosecondsPerMs,
    createIndex: natural(o, 'CreateIndex', what),
    modifyIndex: natural(o, 'ModifyIndex', what),
  };
}

export function txnResult(value: unknown, status: number): TxnResult {
  const o = object(value, 'txn answer');
  if (status === 200) {
    const results = o.Results === null ? [] : array(o.Results, 'txn Results');
    return {
      ok: true,
      results: results.map((item, i) => kvPair(object(item, `txn Results[${i}]`).KV, `txn Results[${i}].KV`)),
    };
  }
  const errors = array(o.Errors, 'txn Errors').map((item, i) => {
    const e = object(item, `txn Errors[${i}]`);
    return {
      opIndex: natural(e, 'OpIndex', `txn Errors[${i}]`),
      what: text(e.What, `txn Errors[${i}].What`),
    };
  });
  return { ok: false, errors };
}

function raftPeer(value: unknown, what: string): RaftPeer {
  const o = object(value, what);
  return {
    id: text(o.ID, `${what}.ID`),
    node: optionalText(o, 'Node', what) ?? '',
    address: text(o.Address, `${what}.Address`),
    leader: bool(o, 'Leader', what),
    voter: bool(o, 'Voter', what),
  };
}

export function raftConfiguration(value: unknown): RaftConfiguration {
  const o = object(value, 'raft configuration');
  return {
    servers: array(o.Servers, 'raft configuration Servers').map((s, i) => raftPeer(s, `Servers[${i}]`)),
    index: natural(o, 'Index', 'raft configuration'),
  };
}

function agentGroup(value: unknown, what: string): AgentGroup {
  const o = object(value, what);
  return {
    groupId: natural(o, 'groupId', what),
    role: text(o.role, `${what}.role`),
    leaderId: optionalText(o, 'leaderId', what),
    term: natural(o, 'term', what),
    commitIndex: natural(o, 'commitIndex', what),
    appliedIndex: natural(o, 'appliedIndex', what),
    voters: stringList(o.voters, `${what}.voters`),
    learners: stringList(o.learners, `${what}.learners`),
  };
}

export function agentSelf(value: unknown): AgentSelf {
  const o = object(value, 'agent/self');
  return {
    nodeId: text(o.nodeId, 'agent/self nodeId'),
    raftAddr: text(o.raftAddr, 'agent/self raftAddr'),
    clusterId: text(o.clusterId, 'agent/self clusterId'),
    groups: array(o.groups, 'agent/self groups').map((g, i) => agentGroup(g, `groups[${i}]`)),
  };
}

/** A header's first value. */
function header(answer: HttpAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The X-Consul-* headers. A missing or malformed index is refused: a blocking loop fed a
 * wrong index would spin or never wake.
 */
export function readMeta(answer: HttpAnswer): ReadMeta {
  const indexText = header(answer, 'x-consul-index') ?? '';
  const index = /^\d+$/.test(indexText) ? Number(indexText) : Number.NaN;
  if (!Number.isSafeInteger(index)) {
    throw badResponse(`X-Consul-Index is missing or not an integer: ${excerpt(indexText)}`, answer.status);
  }
  const lastContact = Number(header(answer, 'x-consul-lastcontact') ?? '0');
  return {
    index,
    knownLeader: header(answer, 'x-consul-knownleader') === 'true',
    lastContactMs: Number.isFinite(lastContact) ? lastContact : 0,
  };
}
