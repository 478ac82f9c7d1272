import type { EventsRead, PrimitiveCommand, PrimitiveEvent, PrimitiveRead } from '../fsm/index.js';
import type { KvEntry, KvOp, SessionEntry, SessionSpec, TxnOutcome } from '../fsm/types.js';

/**
 * The contract between the HTTP API (`api/`) and the service that routes requests to Raft
 * groups (`service/`). The domain shapes (entries, sessions, transactions) belong to the
 * state machine (`fsm/types.ts`) and are re-exported here for the layers above; field
 * names are ours (camelCase), the API maps them to Consul's JSON.
 */

export type {
  KvEntry,
  KvOp,
  KvVerb,
  SessionBehavior,
  SessionEntry,
  SessionSpec,
  TxnError,
  TxnOutcome,
} from '../fsm/types.js';

export type Consistency = 'default' | 'consistent' | 'stale';

/** How a read is served, parsed from `?consistent`, `?stale`, `?max_stale`, `?index`, `?wait`. */
export interface ReadRequest {
  readonly consistency: Consistency;
  /** With stale: refuse if this server last heard from the leader longer ago (ms). */
  readonly maxStaleMs: number | null;
  /** A blocking query: return once the index exceeds `index`, or after `waitMs`. */
  readonly block: { readonly index: number; readonly waitMs: number } | null;
  /** Aborted when the client goes away: a blocking query stops waiting. */
  readonly signal?: AbortSignal | undefined;
}

/** Sent back as X-Consul-Index, X-Consul-KnownLeader, X-Consul-LastContact, X-Consul-Effective-Consistency. */
export interface ReadMeta {
  readonly index: number;
  readonly knownLeader: boolean;
  readonly lastContactMs: number;
  readonly consistency: Consistency;
}

export interface Read<T> {
  readonly value: T;
  readonly meta: ReadMeta;
}

/** One server in one group's configuration (`/v1/operator/raft/configuration`). */
export interface RaftServer {
  readonly id: string;
  readonly node: string;
  readonly address: string;
  readonly leader: boolean;
  readonly voter: boolean;
}

/**
 * Everything the HTTP API needs. Any server answers any request: the service forwards to
 * the leader of the key's group when needed. Failures are ConclaveError / RaftError.
 */
export interface ConclaveService {
  kvGet(options: ReadRequest & { key: string }): Promise<Read<KvEntry | null>>;
  kvList(options: ReadRequest & { prefix: string }): Promise<Read<readonly KvEntry[]>>;
  kvKeys(
    options: ReadRequest & { prefix: string; separator: string | null },
  ): Promise<Read<readonly string[]>>;
  /** A PUT: set, cas (`cas` not null), lock (`acquire`) or unlock (`release`). */
  kvPut(options: {
    key: string;
    value: Uint8Array;
    flags: number;
    cas: number | null;
    acquire: string | null;
    release: string | null;
  }): Promise<{ ok: boolean; index: number }>;
  kvDelete(options: {
    key: string;
    recurse: boolean;
    cas: number | null;
  }): Promise<{ ok: boolean; index: number }>;
  /** Validated ops (at most `txnOpsMax`); the service refuses keys spanning groups. */
  txn(options: { ops: readonly KvOp[] }): Promise<TxnOutcome>;
  sessionCreate(options: Omit<SessionSpec, 'id'>): Promise<{ id: string }>;
  sessionDestroy(options: { id: string }): Promise<boolean>;
  /** Resets the TTL; null if the session does not exist. */
  sessionRenew(options: { id: string }): Promise<SessionEntry | null>;
  sessionInfo(options: ReadRequest & { id: string }): Promise<Read<SessionEntry | null>>;
  sessionList(options: ReadRequest & { node: string | null }): Promise<Read<readonly SessionEntry[]>>;
  /**
   * A coordination primitive's write (fsm/primitives/), checked by the caller with
   * `commandProblem`: to the group of its row, or (a gather write) to every group.
   * Refusals throw ConclaveError with the primitive's code.
   */
  primitiveWrite(command: PrimitiveCommand): Promise<{ result: unknown; index: number }>;
  /**
   * A primitive's read. `group` names the one group a page of entries comes from
   * (`entries`, `elements`); a size is summed over every group.
   */
  primitiveRead(options: ReadRequest & { read: PrimitiveRead; group: number }): Promise<Read<unknown>>;
  /**
   * A primitive's changes after `read.after`, served by this server from its own copy,
   * waiting up to `waitMs` for the first; `group` picks the group of a partitioned
   * primitive's stream when no key does.
   */
  primitiveEvents(options: {
    read: EventsRead;
    group: number;
    waitMs: number;
    signal?: AbortSignal | undefined;
  }): Promise<Read<{ events: readonly PrimitiveEvent[]; compacted: boolean }>>;
  /** Group 0's leader Raft address, '' if none is known. */
  leaderAddress(): string;
  /** Group 0's voters' Raft addresses. */
  peers(): readonly string[];
  raftConfiguration(options: { groupId: number }): {
    readonly servers: readonly RaftServer[];
    readonly index: number;
  };
  groupCount(): number;
}

/** Limits the API enforces before anything reaches Raft. */
export interface ApiLimits {
  /** Largest value accepted by PUT or a txn set (bytes). Default 512 KiB. */
  readonly kvValueBytesMax: number;
  /** Longest key (bytes). */
  readonly kvKeyBytesMax: number;
  /** Most operations in one transaction. */
  readonly txnOpsMax: number;
  /** Default and largest `?wait` of a blocking query (ms). */
  readonly blockingWaitDefaultMs: number;
  readonly blockingWaitMaxMs: number;
}

export const defaultApiLimits: ApiLimits = {
  kvValueBytesMax: 512 * 1024,
  kvKeyBytesMax: 2048,
  txnOpsMax: 128,
  blockingWaitDefaultMs: 5 * 60_000,
  blockingWaitMaxMs: 10 * 60_000,
};

/**
 * The most operations any server may be configured to take in one transaction. A leader
 * checks forwarded transactions against this, not against its own txnOpsMax: the server
 * that took the request already applied the configured limit, and servers may differ.
 */
export const txnOpsMaxCeiling = 4096;

/**
 * The longest key any server may be configured to take (bytes). Forwarded calls carry
 * strings of up to 4096 characters (validate-call.ts), which such a key always fits.
 */
export const kvKeyBytesMaxCeiling = 4096;

/** TTL bounds for sessions, in seconds (Consul's). */
export const sessionTtlSecondsMin = 10;
export const sessionTtlSecondsMax = 86_400;
export const sessionLockDelayDefaultMs = 15_000;
