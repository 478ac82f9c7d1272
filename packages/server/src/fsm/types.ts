import type { KvVerb } from '@conclave/protocol';

export type { KvVerb } from '@conclave/protocol';

/**
 * The state machine's domain: KV entries, sessions and transactions with Consul's
 * semantics. The service and the API above take these shapes from here.
 */

/** A key-value entry as stored in one group. Indexes are that group's Raft indexes. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Opaque to the server; Consul allows a uint64, we keep it to a safe integer. */
  readonly flags: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** How many times a session acquired this key: a fencing token. */
  readonly lockIndex: number;
  /** The session holding the lock, if any. */
  readonly session: string | null;
}

export type SessionBehavior = 'release' | 'delete';

/** What a client asks for when it creates a session. */
export interface SessionSpec {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  /** 0 means no TTL; otherwise in [10, 86400]. */
  readonly ttlSeconds: number;
  readonly behavior: SessionBehavior;
  readonly lockDelayMs: number;
}

export interface SessionEntry extends SessionSpec {
  /** Group 0's index when the session was created: every group's copy carries the same. */
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** One KV operation, alone (a PUT or DELETE) or inside a transaction. */
export interface KvOp {
  readonly verb: KvVerb;
  readonly key: string;
  readonly value?: Uint8Array;
  readonly flags?: number;
  /** For cas, check-index, delete-cas: the expected ModifyIndex (0 = must not exist). */
  readonly index?: number;
  readonly session?: string;
}

export interface TxnError {
  readonly opIndex: number;
  readonly what: string;
}

/**
 * A transaction's outcome. On success, `results` holds one entry per get and per write
 * (writes without their value), several per get-tree, none per delete or check.
 */
export type TxnOutcome =
  | { readonly ok: true; readonly results: readonly KvEntry[]; readonly index: number }
  | { readonly ok: false; readonly errors: readonly TxnError[]; readonly index: number };
