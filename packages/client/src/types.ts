import type { KvVerb } from '@conclave/protocol';

/**
 * What the client hands back, in camelCase; the wire is Consul's JSON (see `decode.ts`).
 */

/** A KV entry. An empty value is an empty array (Consul sends `null`). */
export interface KvPair {
  readonly key: string;
  readonly value: Uint8Array;
  readonly flags: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** How many times a session acquired the key. */
  readonly lockIndex: number;
  /** The session holding the key, null when none does. */
  readonly session: string | null;
}

export type Consistency = 'default' | 'consistent' | 'stale';

export interface ReadOptions {
  readonly consistency?: Consistency;
  /**
   * A blocking query: answer once the result's index is above this one (or after waitMs).
   * 0 or absent never blocks.
   */
  readonly index?: number;
  /** How long a blocking query may wait; the server caps it (10 min by default). */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
}

/** The X-Consul-* headers of a read. */
export interface ReadMeta {
  /** Pass it back as `index` to wait for the next change. Never 0. */
  readonly index: number;
  readonly knownLeader: boolean;
  readonly lastContactMs: number;
}

export interface ReadResult<T> {
  readonly value: T;
  readonly meta: ReadMeta;
}

export type SessionBehavior = 'release' | 'delete';

export interface SessionInfo {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  /** 0 for no TTL. */
  readonly ttlSeconds: number;
  readonly behavior: SessionBehavior;
  readonly lockDelayMs: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export interface SessionCreateOptions {
  readonly name?: string;
  /** Whole seconds in [10, 86400]; absent for no TTL. */
  readonly ttlSeconds?: number;
  readonly behavior?: SessionBehavior;
  /** How long keys the session held stay unacquirable after it is invalidated (not released). */
  readonly lockDelayMs?: number;
  readonly node?: string;
  readonly signal?: AbortSignal;
}

/** A transaction operation's verb: the server's own list. */
export type TxnVerb = KvVerb;

/** One KV operation of a transaction (Consul's TxnKVOp). */
export interface TxnOp {
  readonly verb: TxnVerb;
  readonly key: string;
  readonly value?: Uint8Array;
  readonly flags?: number;
  /** The expected ModifyIndex for cas, check-index, delete-cas. */
  readonly index?: number;
  readonly session?: string;
}

export type TxnResult =
  | { readonly ok: true; readonly results: readonly KvPair[] }
  | { readonly ok: false; readonly errors: readonly { opIndex: number; what: string }[] };

export interface RaftPeer {
  readonly id: string;
  readonly node: string;
  /** The Raft address. */
  readonly address: string;
  readonly leader: boolean;
  readonly voter: boolean;
}

export interface RaftConfiguration {
  readonly servers: readonly RaftPeer[];
  readonly index: number;
}

/** One Raft group as the addressed server sees it. */
export interface AgentGroup {
  readonly groupId: number;
  readonly role: string;
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

/** `/v1/agent/self`: the addressed server. */
export interface AgentSelf {
  readonly nodeId: string;
  readonly raftAddr: string;
  readonly clusterId: string;
  readonly groups: readonly AgentGroup[];
}
