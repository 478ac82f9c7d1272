import { assert } from '@conclave/raft';
import { type KindMachine, unchanged } from './kind.js';

/** One element of a set (the set is its elements, spread over the groups). */
export interface SetElementState {
  /** The session an ephemeral element is bound to, or null. */
  readonly owner: string | null;
  /** The element's time to live, counted by the group's leader from the add (service/ttl.ts). */
  readonly ttlMs: number | null;
}

export const setKind: KindMachine<SetElementState> = {
  eventOp: 'entry',
  args: {
    add: { key: 'key', ephemeral: 'bool?', ttlMs: 'ttl?' },
    remove: { key: 'key', ifVersion: 'index?' },
    contains: { key: 'key' },
    size: {},
    elements: { after: 'key?', limit: 'count?' },
    clear: {},
  },
  sessionOps: new Set(),
  encodeState: (state) => [state.owner, state.ttlMs],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 2, 'a set element row is [owner, ttlMs]');
    const [owner, ttlMs] = wire as unknown[];
    assert(owner === null || typeof owner === 'string', 'an element owner is a session id or null');
    assert(ttlMs === null || Number.isSafeInteger(ttlMs), 'an element ttl is an integer or null');
    return { owner, ttlMs: ttlMs as number | null };
  },
  apply(op, { state, args, index, session }) {
    switch (op) {
      case 'add': {
        const owner = args.ephemeral === true ? session : null;
        const ttlMs = (args.ttlMs as number | undefined) ?? null;
        // Adding again restarts a TTL (a new version), as a put does.
        if (state !== null && state.owner === owner && ttlMs === null && state.ttlMs === null) {
          return unchanged({ added: false });
        }
        return { ok: true, state: { owner, ttlMs }, result: { added: state === null, version: index } };
      }
      case 'remove':
        if (state === null) return unchanged({ removed: false });
        return { ok: true, state: null, result: { removed: true, version: index } };
      default:
        assert(false, () => `set has no write ${op}`);
    }
  },
  read(op, { state, version, args }) {
    if (op === 'entry') return args.key;
    assert(op === 'contains', () => `set has no read ${op}`);
    return { contains: state !== null, version };
  },
  ttlOf: (state) => state.ttlMs,
  sessionsOf: (state) => (state.owner === null ? [] : [state.owner]),
  sessionGone: (state, { session }) => (state.owner === session ? null : state),
};
