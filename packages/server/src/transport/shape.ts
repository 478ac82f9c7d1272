import {
  type ConfState,
  type Entry,
  EntryType,
  isValidNodeId,
  type Message,
  type NodeId,
  type SnapshotMetadata,
} from '@conclave/raft';
import type { Envelope, PeerAddress } from './types.js';

/**
 * Structural checks for values decoded from the wire. Nothing from a peer reaches Raft
 * until it has been rebuilt here field by field: the result holds only the fields the
 * type names, each of the right type and range, so an unknown key, a Date where a number
 * belongs or a negative term is a protocol error rather than a surprise deep in the core.
 */

/** Thrown while parsing; callers turn it into a closed connection and a log line. */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type Fields = Readonly<Record<string, unknown>>;

export function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function object(value: unknown, path: string): Fields {
  if (!isPlainObject(value)) throw new ShapeError(`${path} must be a map, got ${describe(value)}`);
  return value;
}

export function array(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new ShapeError(`${path} must be an array, got ${describe(value)}`);
  return value;
}

/** Terms, indexes, offsets, rounds and group ids: non-negative safe integers. */
export function uint(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ShapeError(`${path} must be a non-negative safe integer, got ${describe(value)}`);
  }
  return value;
}

function bool(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new ShapeError(`${path} must be a boolean, got ${describe(value)}`);
  return value;
}

function bytes(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ShapeError(`${path} must be binary, got ${describe(value)}`);
  return value;
}

export function nodeId(value: unknown, path: string): NodeId {
  if (typeof value !== 'string' || !isValidNodeId(value)) {
    throw new ShapeError(`${path} must be a node id, got ${describe(value)}`);
  }
  return value;
}

export function string(value: unknown, path: string, lengthMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > lengthMax) {
    throw new ShapeError(`${path} must be a string of 1-${lengthMax} characters, got ${describe(value)}`);
  }
  return value;
}

/** Host names and IP literals; 253 is the longest DNS name. */
const hostLengthMax = 253;

/** A `{ host, port }` map: a non-empty host and a TCP port in [1, 65535]. */
export function peerAddress(value: unknown, path: string): PeerAddress {
  const f = object(value, path);
  const host = string(f.host, `${path}.host`, hostLengthMax);
  const port = uint(f.port, `${path}.port`);
  if (port < 1 || port > 65535) throw new ShapeError(`${path}.port must be a TCP port, got ${port}`);
  return { host, port };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'null-prototype object'}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${typeof value} ${String(value)}`;
}

function entry(value: unknown, path: string): Entry {
  const fields = object(value, path);
  const type = fields.type;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    throw new ShapeError(`${path}.type must be an entry type, got ${describe(type)}`);
  }
  return {
    term: uint(fields.term, `${path}.term`),
    index: uint(fields.index, `${path}.index`),
    type,
    data: bytes(fields.data, `${path}.data`),
  };
}

function nodeIds(value: unknown, path: string): NodeId[] {
  return array(value, path).map((id, i) => nodeId(id, `${path}[${i}]`));
}

function snapshotMetadata(value: unknown, path: string): SnapshotMetadata {
  const fields = object(value, path);
  const conf = object(fields.confState, `${path}.confState`);
  const confState: ConfState = {
    voters: nodeIds(conf.voters, `${path}.confState.voters`),
    learners: nodeIds(conf.learners, `${path}.confState.learners`),
  };
  return { index: uint(fields.index, `${path}.index`), term: uint(fields.term, `${path}.term`), confState };
}

export function message(value: unknown, path: string): Message {
  const f = object(value, path);
  const base = { from: nodeId(f.from, `${path}.from`), to: nodeId(f.to, `${path}.to`) };
  const term = uint(f.term, `${path}.term`);
  const at = (key: string): string => `${path}.${key}`;
  const type = f.type;
  switch (type) {
    case 'app':
      return {
        type,
        ...base,
        term,
        index: uint(f.index, at('index')),
        logTerm: uint(f.logTerm, at('logTerm')),
        entries: array(f.entries, at('entries')).map((e, i) => entry(e, `${path}.entries[${i}]`)),
        commit: uint(f.commit, at('commit')),
      };
    case 'appResp':
      return {
        type,
        ...base,
        term,
        index: uint(f.index, at('index')),
        reject: bool(f.reject, at('reject')),
        hintIndex: uint(f.hintIndex, at('hintIndex')),
        hintTerm: uint(f.hintTerm, at('hintTerm')),
      };
    case 'vote':
    case 'preVote':
      return {
        type,
        ...base,
        term,
        index: uint(f.index, at('index')),
        logTerm: uint(f.logTerm, at('logTerm')),
        transfer: bool(f.transfer, at('transfer')),
      };
    case 'voteResp':
    case 'preVoteResp':
      return { type, ...base, term, reject: bool(f.reject, at('reject')) };
    case 'heartbeat':
      return { type, ...base, term, commit: uint(f.commit, at('commit')), round: uint(f.round, at('round')) };
    case 'heartbeatResp':
      return { type, ...base, term, round: uint(f.round, at('round')) };
    case 'snap':
      return {
        type,
        ...base,
        term,
        metadata: snapshotMetadata(f.metadata, at('metadata')),
        offset: uint(f.offset, at('offset')),
        data: bytes(f.data, at('data')),
        done: bool(f.done, at('done')),
      };
    case 'snapResp':
      return { type, ...base, term, index: uint(f.index, at('index')), offset: uint(f.offset, at('offset')) };
    case 'timeoutNow':
      return { type, ...base, term };
    default:
      throw new ShapeError(`${path}.type must be a message type, got ${describe(type)}`);
  }
}

export function envelope(value: unknown, path: string): Envelope {
  const fields = object(value, path);
  return {
    groupId: uint(fields.groupId, `${path}.groupId`),
    message: message(fields.message, `${path}.message`),
  };
}
