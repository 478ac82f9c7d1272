import type { ErrorCode } from '@conclave/protocol';

/**
 * One kind of primitive as a deterministic state machine over one row's state. The engine
 * (apply.ts) loads the row, runs the operation, stores what it returns and keeps the
 * session holds in step with `sessionsOf`; a kind never touches the store.
 */
export interface KindMachine<S> {
  /** The read whose answer an event carries: the state after a change (events.ts). */
  readonly eventOp: string;
  /** Field types of each operation's arguments (args.ts). */
  readonly args: Readonly<Record<string, ArgsSpec>>;
  /** Operations that need the caller's session (a lock's holder, a candidate). */
  readonly sessionOps: ReadonlySet<string>;
  /**
   * True when `ifVersion` names an entry's version inside the state (an indexed map's), which
   * the kind checks; otherwise the engine checks it against the row's version.
   */
  readonly entryVersions?: boolean;
  /** What is wrong with an operation's arguments beyond their types, or null. */
  argsRule?(op: string, args: Args): string | null;
  /** The state's time to live (ms from its last write), or null: the leader expires it. */
  ttlOf?(state: S): number | null;
  /** How many entries one row counts for in `size` (a multimap key's values); 1 if absent. */
  entryCount?(state: S): number;
  encodeState(state: S): unknown;
  /** Asserts the shape: the row was written by encodeState. */
  decodeState(wire: unknown): S;
  /**
   * Runs a write. `version` is the row's last write index (0: no row). A result is plain
   * data (numbers, strings, bytes, null, arrays, objects) that msgpack and JSON carry.
   */
  apply(op: string, context: WriteContext<S>): KindOutcome<S>;
  read(op: string, context: ReadContext<S>): unknown;
  /** The sessions the state refers to; each gets a hold row. */
  sessionsOf(state: S): readonly string[];
  /** The state once `session` is gone (expired or destroyed); null deletes the row. */
  sessionGone(state: S, context: { session: string; index: number; fence: () => number }): S | null;
}

export type Args = Readonly<Record<string, unknown>>;

export interface ReadContext<S> {
  readonly state: S | null;
  readonly version: number;
  readonly args: Args;
}

export interface WriteContext<S> extends ReadContext<S> {
  /** The Raft index of this write: the new version of whatever it changes. */
  readonly index: number;
  readonly session: string | null;
  /** A new fence (fences.ts): larger than any this group gave, and unique in the cluster. */
  readonly fence: () => number;
}

/** An expected refusal: reported with its code, and nothing changes. */
export interface PrimitiveError {
  readonly code: ErrorCode;
  readonly message: string;
}

/** A write's outcome: the new state (null deletes the row; `unchanged` writes nothing). */
export type KindOutcome<S> =
  | { readonly ok: true; readonly state: S | null; readonly result: unknown }
  | { readonly ok: true; readonly unchanged: true; readonly result: unknown }
  | { readonly ok: false; readonly error: PrimitiveError };

/** A field's type: `?` makes it optional. */
export type ArgType =
  | 'key'
  | 'bytes'
  | 'bytes[]'
  | 'int'
  | 'count'
  | 'index'
  | 'id'
  | 'bool'
  | 'ttl'
  | 'steps'
  | 'key?'
  | 'bytes?'
  | 'bytes[]?'
  | 'int?'
  | 'count?'
  | 'index?'
  | 'id?'
  | 'bool?'
  | 'ttl?';

export type ArgsSpec = Readonly<Record<string, ArgType>>;

export function refuse(code: ErrorCode, message: string): { ok: false; error: PrimitiveError } {
  return { ok: false, error: { code, message } };
}

export function unchanged(result: unknown): { ok: true; unchanged: true; result: unknown } {
  return { ok: true, unchanged: true, result };
}
