import { assert } from '@conclave/raft';
import { type KindMachine, unchanged } from './kind.js';

/**
 * A register: bytes, or none. A delete keeps the row (value null) so that the version, the
 * row's last write index, only grows.
 */
export interface ValueState {
  readonly value: Uint8Array | null;
  /** The session the value is bound to (it is deleted when that session ends), or null. */
  readonly owner: string | null;
  /** The value's time to live, counted by the group's leader from the write (service/ttl.ts). */
  readonly ttlMs: number | null;
}

export const valueKind: KindMachine<ValueState> = {
  eventOp: 'get',
  args: {
    get: {},
    set: { value: 'bytes', ifVersion: 'index?', ephemeral: 'bool?', ttlMs: 'ttl?' },
    compareAndSet: { value: 'bytes', ifVersion: 'index', ephemeral: 'bool?', ttlMs: 'ttl?' },
    delete: { ifVersion: 'index?' },
  },
  sessionOps: new Set(),
  encodeState: (state) => [state.value, state.owner, state.ttlMs],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 3, 'a value row is [value, owner, ttlMs]');
    const [value, owner, ttlMs] = wire as unknown[];
    assert(ttlMs === null || Number.isSafeInteger(ttlMs), 'a value ttl is an integer or null');
    assert(value === null || value instanceof Uint8Array, 'a value is bytes or null');
    assert(owner === null || typeof owner === 'string', 'a value owner is a session id or null');
    return { value: value === null ? null : new Uint8Array(value), owner, ttlMs: ttlMs as number | null };
  },
  apply(op, { state, version, args, index, session }) {
    const previous = state?.value == null ? null : { value: state.value, version };
    switch (op) {
      case 'set':
      case 'compareAndSet': {
        const owner = args.ephemeral === true ? session : null;
        const ttlMs = (args.ttlMs as number | undefined) ?? null;
        return {
          ok: true,
          state: { value: args.value as Uint8Array, owner, ttlMs },
          result: { version: index, previous },
        };
      }
      case 'delete':
        if (previous === null) return unchanged({ version, previous: null });
        return {
          ok: true,
          state: { value: null, owner: null, ttlMs: null },
          result: { version: index, previous },
        };
      default:
        assert(false, () => `value has no write ${op}`);
    }
  },
  read(op, { state, version }) {
    assert(op === 'get', () => `value has no read ${op}`);
    return { value: state?.value ?? null, version };
  },
  ttlOf: (state) => (state.value === null ? null : state.ttlMs),
  sessionsOf: (state) => (state.owner === null ? [] : [state.owner]),
  sessionGone: (state, { session }) =>
    state.owner === session ? { value: null, owner: null, ttlMs: null } : state,
};
