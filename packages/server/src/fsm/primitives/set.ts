import { assert } from '@conclave/raft';
import { type KindMachine, unchanged } from './kind.js';

/** One element of a set (the set is its elements, spread over the groups). */
export interface SetElementState {
  /** The session an ephemeral element is bound to, or null. */
  readonly owner: string | null;
}

export const setKind: KindMachine<SetElementState> = {
  eventOp: 'entry',
  args: {
    add: { key: 'key', ephemeral: 'bool?' },
    remove: { key: 'key' },
    contains: { key: 'key' },
    size: {},
    elements: { after: 'key?', limit: 'count?' },
    clear: {},
  },
  sessionOps: new Set(),
  encodeState: (state) => state.owner,
  decodeState(wire) {
    assert(wire === null || typeof wire === 'string', 'a set element row holds its owner or null');
    return { owner: wire };
  },
  apply(op, { state, args, index, session }) {
    switch (op) {
      case 'add': {
        const owner = args.ephemeral === true ? session : null;
        if (state !== null && state.owner === owner) return unchanged({ added: false });
        return { ok: true, state: { owner }, result: { added: state === null, version: index } };
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
  sessionsOf: (state) => (state.owner === null ? [] : [state.owner]),
  sessionGone: (state, { session }) => (state.owner === session ? null : state),
};
