import { primitiveValuesMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * A list of values, wholly in one group so that its operations are totally ordered. It is
 * one row, so it holds at most `primitiveValuesMax` values and one row's bytes: a list for
 * coordination (a queue of work, a set of endpoints), not for bulk data.
 */
export interface ListState {
  readonly items: readonly Uint8Array[];
}

export const listKind: KindMachine<ListState> = {
  eventOp: 'items',
  args: {
    append: { value: 'bytes', ifVersion: 'index?' },
    insert: { index: 'index', value: 'bytes', ifVersion: 'index?' },
    get: { index: 'index' },
    set: { index: 'index', value: 'bytes', ifVersion: 'index?' },
    remove: { index: 'index', ifVersion: 'index?' },
    size: {},
    items: { after: 'index?', limit: 'count?' },
    clear: { ifVersion: 'index?' },
  },
  sessionOps: new Set(),
  encodeState: (state) => state.items,
  decodeState(wire) {
    assert(Array.isArray(wire), 'a list row holds its items');
    assert(
      wire.every((v: unknown) => v instanceof Uint8Array),
      'list items are bytes',
    );
    return { items: wire.map((v: Uint8Array) => new Uint8Array(v)) };
  },
  apply(op, { state, args, index: version }): KindOutcome<ListState> {
    const items = state?.items ?? [];
    const at = args.index as number;
    switch (op) {
      case 'append':
      case 'insert': {
        const position = op === 'append' ? items.length : at;
        if (position > items.length) return outOfRange({ at: position, size: items.length, op });
        if (items.length >= primitiveValuesMax) {
          return refuse('VALUE_TOO_LARGE', `a list holds at most ${primitiveValuesMax} items`);
        }
        const next = [...items.slice(0, position), args.value as Uint8Array, ...items.slice(position)];
        return { ok: true, state: { items: next }, result: { index: position, version } };
      }
      case 'set': {
        const previous = items[at];
        if (previous === undefined) return outOfRange({ at, size: items.length, op });
        const next = items.map((item, i) => (i === at ? (args.value as Uint8Array) : item));
        return { ok: true, state: { items: next }, result: { previous, version } };
      }
      case 'remove': {
        const previous = items[at];
        if (previous === undefined) return outOfRange({ at, size: items.length, op });
        return {
          ok: true,
          state: { items: items.filter((_, i) => i !== at) },
          result: { previous, version },
        };
      }
      case 'clear':
        if (items.length === 0) return unchanged({ removed: 0 });
        return { ok: true, state: { items: [] }, result: { removed: items.length, version } };
      default:
        assert(false, () => `list has no write ${op}`);
    }
  },
  read(op, { state, version, args }) {
    const items = state?.items ?? [];
    switch (op) {
      case 'get': {
        const value = items[args.index as number];
        return value === undefined ? null : { value, version };
      }
      case 'size':
        return { size: items.length, version };
      case 'items': {
        const start = args.after === undefined ? 0 : (args.after as number) + 1;
        const limit = (args.limit as number | undefined) ?? primitiveValuesMax;
        const page = items.slice(start, start + limit);
        return { items: page, start, more: start + page.length < items.length, version };
      }
      default:
        assert(false, () => `list has no read ${op}`);
    }
  },
  sessionsOf: () => [],
  sessionGone: (state) => state,
};

function outOfRange(options: { at: number; size: number; op: string }): KindOutcome<ListState> {
  return refuse('INDEX_OUT_OF_RANGE', `${options.op} at ${options.at}: the list has ${options.size} items`);
}
