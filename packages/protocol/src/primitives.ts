/**
 * The coordination primitives' wire: which kinds exist, which operations each has, and
 * whether an operation reads or writes. Server, SDK and CLI all take the names from here.
 *
 * Over HTTP every operation is `POST /v1/primitive/<kind>/<name>/<op>` with a JSON body
 * `{ args, session?, seq? }`; the reply is `{ result, index }`. Values are bytes, sent as
 * base64 strings; counters are safe integers. docs/primitives.md has the details.
 */

/**
 * Kinds whose state is spread over the groups by entry key. Every other kind lives wholly
 * in the group its name hashes to, so its operations are totally ordered.
 */
export const partitionedKinds = ['map', 'set', 'multimap'] as const;
export const wholeKinds = [
  'counter',
  'value',
  'lock',
  'election',
  'semaphore',
  'list',
  'indexedmap',
] as const;
export const primitiveKinds = [...partitionedKinds, ...wholeKinds] as const;

export type PrimitiveKind = (typeof primitiveKinds)[number];

/**
 * Every operation of every kind, and whether it reads ('read') or changes state ('write').
 * A write is proposed through Raft; with a session and a sequence number it applies once
 * however often it is retried. A read runs on the group's state in the read mode asked for
 * (default, consistent, stale) and may block (`index`, `wait`) until the state changes.
 * 'gather' reads and writes run on every group (partitioned kinds).
 */
export const primitiveOps = {
  map: {
    get: 'read',
    put: 'write',
    insert: 'write',
    update: 'write',
    remove: 'write',
    transaction: 'write',
    size: 'gather-read',
    entries: 'gather-read',
    clear: 'gather-write',
  },
  set: {
    add: 'write',
    remove: 'write',
    contains: 'read',
    size: 'gather-read',
    elements: 'gather-read',
    clear: 'gather-write',
  },
  multimap: {
    get: 'read',
    put: 'write',
    putAll: 'write',
    replace: 'write',
    remove: 'write',
    removeAll: 'write',
    containsEntry: 'read',
    size: 'gather-read',
    entries: 'gather-read',
    clear: 'gather-write',
  },
  list: {
    append: 'write',
    insert: 'write',
    get: 'read',
    set: 'write',
    remove: 'write',
    size: 'read',
    items: 'read',
    clear: 'write',
  },
  indexedmap: {
    append: 'write',
    get: 'read',
    update: 'write',
    remove: 'write',
    first: 'read',
    last: 'read',
    next: 'read',
    prev: 'read',
    size: 'read',
    entries: 'read',
    clear: 'write',
  },
  counter: {
    get: 'read',
    set: 'write',
    increment: 'write',
    decrement: 'write',
    compareAndSet: 'write',
  },
  value: { get: 'read', set: 'write', compareAndSet: 'write', delete: 'write' },
  lock: { tryAcquire: 'write', acquire: 'write', cancel: 'write', release: 'write', holder: 'read' },
  election: {
    enter: 'write',
    withdraw: 'write',
    anoint: 'write',
    promote: 'write',
    evict: 'write',
    term: 'read',
  },
  semaphore: {
    setPermits: 'write',
    tryAcquire: 'write',
    acquire: 'write',
    cancel: 'write',
    release: 'write',
    drain: 'write',
    availablePermits: 'read',
  },
} as const satisfies Record<PrimitiveKind, Record<string, OpMode>>;

/**
 * 'events': a stream's next changes after a version, served by the server asked from its
 * own copy (any server: the changes come in the same order everywhere).
 */
export type OpMode = 'read' | 'write' | 'gather-read' | 'gather-write' | 'events';

export type PrimitiveOp<K extends PrimitiveKind> = keyof (typeof primitiveOps)[K] & string;

export function isPrimitiveKind(kind: string): kind is PrimitiveKind {
  return (primitiveKinds as readonly string[]).includes(kind);
}

export function isPartitionedKind(kind: PrimitiveKind): boolean {
  return (partitionedKinds as readonly string[]).includes(kind);
}

/** The operation's mode, or null when the kind has no such operation. Every kind has `events`. */
export function opModeOf(options: { kind: PrimitiveKind; op: string }): OpMode | null {
  if (options.op === 'events') return 'events';
  const ops: Record<string, OpMode> = primitiveOps[options.kind];
  return Object.hasOwn(ops, options.op) ? (ops[options.op] ?? null) : null;
}

/** A primitive's name: 1 to this many characters, none a control character. */
export const primitiveNameCharsMax = 256;
/** A map key or set element: 1 to this many characters, none a control character. */
export const primitiveKeyCharsMax = 512;
/** Entries one `entries`/`elements` page returns at most. */
export const primitivePageEntriesMax = 1000;
/** Waiters one lock or semaphore queues at most; one more is refused with OVERLOADED. */
export const primitiveWaitersMax = 1024;
/** Candidates one election holds at most. */
export const electionCandidatesMax = 1024;
/** Results each session's calls leave in each group, to answer a retry once more. */
export const sessionResultsMax = 128;
/** An entry's or a value's time to live: at least a second, at most a day (Consul's session bounds). */
export const primitiveTtlMsMin = 1000;
export const primitiveTtlMsMax = 86_400_000;
/** Steps one map transaction takes at most. */
export const primitiveTxnStepsMax = 64;
/** Values one multimap call or one list holds at most. */
export const primitiveValuesMax = 1024;
/** A candidate's id: 1 to this many characters. */
export const candidateIdCharsMax = 256;

/** A versioned entry of a map, or a value: `version` is the Raft index of its last write. */
export interface VersionedBytes {
  readonly value: Uint8Array;
  readonly version: number;
}

/** What a lock's `holder` read returns. */
export interface LockHolder {
  /** The session holding the lock, or null when free. */
  readonly session: string | null;
  /** The holder's fence: the Raft index at which it was granted; null when free. */
  readonly fence: number | null;
  /** Sessions waiting, first in line first. */
  readonly waiters: readonly string[];
}

/** An election's state: `term` grows at every change of leader and is the leader's fence. */
export interface ElectionTerm {
  readonly term: number;
  readonly leader: string | null;
  /** Candidates by id, in line order (the leader first). */
  readonly candidates: readonly string[];
}
