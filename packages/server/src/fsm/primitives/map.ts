import { assert } from '@conclave/raft';
import { type KindMachine, refuse, unchanged } from './kind.js';

/**
 * One entry of a map (the map is its entries, spread over the groups by key). `owner`
 * binds an ephemeral entry to a session: the entry goes when the session ends.
 */
export interface MapEntryState {
  readonly value: Uint8Array;
  readonly owner: string | null;
  /** The entry's time to live, counted by the group's leader from the write (service/ttl.ts). */
  readonly ttlMs: number | null;
}

const page = { after: 'key?', limit: 'count?' } as const;

export const mapKind: KindMachine<MapEntryState> = {
  eventOp: 'entry',
  args: {
    get: { key: 'key' },
    put: { key: 'key', value: 'bytes', ifVersion: 'index?', ephemeral: 'bool?', ttlMs: 'ttl?' },
    insert: { key: 'key', value: 'bytes', ephemeral: 'bool?', ttlMs: 'ttl?' },
    update: { key: 'key', value: 'bytes', ifVersion: 'index?', ephemeral: 'bool?', ttlMs: 'ttl?' },
    remove: { key: 'key', ifVersion: 'index?' },
    transaction: { steps: 'steps' },
    size: {},
    entries: page,
    clear: {},
  },
  sessionOps: new Set(),
  encodeState: (state) => [state.value, state.owner, state.ttlMs],
  decodeState: decodeEntry,
  apply(op, { state, version, args, index, session }) {
    const key = args.key as string;
    const previous = state === null ? null : { value: state.value, version };
    const owner = args.ephemeral === true ? session : null;
    const ttlMs = (args.ttlMs as number | undefined) ?? null;
    const value = args.value as Uint8Array;
    switch (op) {
      case 'insert':
        if (state !== null)
          return refuse(
            'VERSION_MISMATCH',
            `key ${JSON.stringify(key)} exists (version ${version}): insert needs it absent`,
          );
        return { ok: true, state: { value, owner, ttlMs }, result: { version: index, previous } };
      case 'update':
        if (state === null)
          return refuse(
            'KEY_NOT_FOUND',
            `key ${JSON.stringify(key)} does not exist: update needs it present`,
          );
        return { ok: true, state: { value, owner, ttlMs }, result: { version: index, previous } };
      case 'put':
        return { ok: true, state: { value, owner, ttlMs }, result: { version: index, previous } };
      case 'remove':
        if (state === null) return unchanged({ version: null, previous: null });
        return { ok: true, state: null, result: { version: index, previous } };
      default:
        assert(false, () => `map has no write ${op}`);
    }
  },
  read(op, { state, version, args }) {
    assert(op === 'get' || op === 'entry', () => `map has no read ${op}`);
    if (op === 'entry') {
      assert(state !== null, 'an entry read has its entry');
      return { key: args.key, value: state.value, version };
    }
    return state === null ? null : { value: state.value, version };
  },
  ttlOf: (state) => state.ttlMs,
  sessionsOf: (state) => (state.owner === null ? [] : [state.owner]),
  sessionGone: (state, { session }) => (state.owner === session ? null : state),
};

export function decodeEntry(wire: unknown): MapEntryState {
  assert(Array.isArray(wire) && wire.length === 3, 'an entry row is [value, owner, ttlMs]');
  const [value, owner, ttlMs] = wire as unknown[];
  assert(ttlMs === null || Number.isSafeInteger(ttlMs), 'an entry ttl is an integer or null');
  assert(value instanceof Uint8Array, 'an entry value is bytes');
  assert(owner === null || typeof owner === 'string', 'an entry owner is a session id or null');
  return { value: new Uint8Array(value), owner, ttlMs: ttlMs as number | null };
}
