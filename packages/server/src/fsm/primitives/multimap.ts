import { primitiveValuesMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * The values of one key of a multimap (the multimap is its keys, spread over the groups).
 * Each key holds a set of distinct values, in the order they were first put.
 */
export interface MultimapEntryState {
  readonly values: readonly Uint8Array[];
}

export const multimapKind: KindMachine<MultimapEntryState> = {
  eventOp: 'entry',
  args: {
    get: { key: 'key' },
    put: { key: 'key', value: 'bytes', ifVersion: 'index?' },
    putAll: { key: 'key', values: 'bytes[]', ifVersion: 'index?' },
    replace: { key: 'key', values: 'bytes[]', ifVersion: 'index?' },
    remove: { key: 'key', value: 'bytes', ifVersion: 'index?' },
    removeAll: { key: 'key', ifVersion: 'index?' },
    containsEntry: { key: 'key', value: 'bytes' },
    size: {},
    entries: { after: 'key?', limit: 'count?' },
    clear: {},
  },
  sessionOps: new Set(),
  encodeState: (state) => state.values,
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length > 0, 'a multimap row holds its values');
    assert(
      wire.every((v: unknown) => v instanceof Uint8Array),
      'multimap values are bytes',
    );
    return { values: wire.map((v: Uint8Array) => new Uint8Array(v)) };
  },
  apply(op, { state, version, args, index }): KindOutcome<MultimapEntryState> {
    const values = state?.values ?? [];
    switch (op) {
      case 'put':
      case 'putAll': {
        const adding = op === 'put' ? [args.value as Uint8Array] : (args.values as Uint8Array[]);
        const next = [...values];
        for (const value of adding) if (!next.some((v) => sameBytes(v, value))) next.push(value);
        if (next.length === values.length) return unchanged({ added: 0, version });
        if (next.length > primitiveValuesMax) {
          return refuse('VALUE_TOO_LARGE', `a multimap key holds at most ${primitiveValuesMax} values`);
        }
        return {
          ok: true,
          state: { values: next },
          result: { added: next.length - values.length, version: index },
        };
      }
      case 'replace': {
        const next: Uint8Array[] = [];
        for (const value of args.values as Uint8Array[])
          if (!next.some((v) => sameBytes(v, value))) next.push(value);
        return {
          ok: true,
          state: next.length === 0 ? null : { values: next },
          result: { previous: values, version: index },
        };
      }
      case 'remove': {
        const value = args.value as Uint8Array;
        const next = values.filter((v) => !sameBytes(v, value));
        if (next.length === values.length) return unchanged({ removed: false, version });
        return {
          ok: true,
          state: next.length === 0 ? null : { values: next },
          result: { removed: true, version: index },
        };
      }
      case 'removeAll':
        if (state === null) return unchanged({ previous: [], version });
        return { ok: true, state: null, result: { previous: values, version: index } };
      default:
        assert(false, () => `multimap has no write ${op}`);
    }
  },
  read(op, { state, version, args }) {
    const values = state?.values ?? [];
    switch (op) {
      case 'get':
        return { values, version };
      case 'containsEntry':
        return { contains: values.some((v) => sameBytes(v, args.value as Uint8Array)), version };
      case 'entry':
        return { key: args.key, values, version };
      default:
        assert(false, () => `multimap has no read ${op}`);
    }
  },
  entryCount: (state) => state.values.length,
  sessionsOf: () => [],
  sessionGone: (state) => state,
};

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
