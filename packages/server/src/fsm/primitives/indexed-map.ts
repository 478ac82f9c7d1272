import { primitiveValuesMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * A map whose entries keep the order they were appended in: each gets an index, larger than
 * every index before it, and can be read by key or by index and walked in order. Wholly in
 * one group and one row, so it holds at most `primitiveValuesMax` entries.
 */
export interface IndexedMapState {
  /** The index the next append takes. */
  readonly nextIndex: number;
  /** By index, ascending; each key once. */
  readonly entries: readonly IndexedEntry[];
}

export interface IndexedEntry {
  readonly index: number;
  readonly key: string;
  readonly value: Uint8Array;
  /** The Raft index of the entry's last write. */
  readonly version: number;
}

export const indexedMapKind: KindMachine<IndexedMapState> = {
  eventOp: 'entries',
  args: {
    append: { key: 'key', value: 'bytes' },
    get: { key: 'key?', index: 'index?' },
    update: { key: 'key?', index: 'index?', value: 'bytes', ifVersion: 'index?' },
    remove: { key: 'key?', index: 'index?', ifVersion: 'index?' },
    first: {},
    last: {},
    next: { index: 'index' },
    prev: { index: 'index' },
    size: {},
    entries: { after: 'index?', limit: 'count?' },
    clear: {},
  },
  sessionOps: new Set(),
  entryVersions: true,
  argsRule(op, args) {
    if (!['get', 'update', 'remove'].includes(op)) return null;
    return (args.key === undefined) === (args.index === undefined)
      ? 'name the entry by args.key or args.index, one of them'
      : null;
  },
  encodeState: (state) => [state.nextIndex, state.entries.map((e) => [e.index, e.key, e.value, e.version])],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 2 && Number.isSafeInteger(wire[0]), 'an indexed map row');
    const [nextIndex, entries] = wire as [number, unknown];
    assert(Array.isArray(entries), 'indexed map entries are a list');
    return {
      nextIndex,
      entries: entries.map((e: unknown) => {
        assert(Array.isArray(e) && e.length === 4, 'an entry is [index, key, value, version]');
        const [index, key, value, version] = e as [number, string, Uint8Array, number];
        return { index, key, value: new Uint8Array(value), version };
      }),
    };
  },
  apply(op, { state, args, index: version }): KindOutcome<IndexedMapState> {
    const map = state ?? { nextIndex: 1, entries: [] };
    if (op === 'append') {
      const key = args.key as string;
      if (map.entries.some((e) => e.key === key)) {
        return refuse('VERSION_MISMATCH', `key ${JSON.stringify(key)} exists: append needs it absent`);
      }
      if (map.entries.length >= primitiveValuesMax) {
        return refuse('VALUE_TOO_LARGE', `an indexed map holds at most ${primitiveValuesMax} entries`);
      }
      const entry = { index: map.nextIndex, key, value: args.value as Uint8Array, version };
      const state = { nextIndex: map.nextIndex + 1, entries: [...map.entries, entry] };
      return { ok: true, state, result: { key, index: entry.index, version } };
    }
    if (op === 'clear') {
      if (map.entries.length === 0) return unchanged({ removed: 0 });
      return { ok: true, state: { ...map, entries: [] }, result: { removed: map.entries.length, version } };
    }
    const found = lookup(map, args);
    if (found === null) return refuse('KEY_NOT_FOUND', `no entry ${describeTarget(args)}`);
    if (args.ifVersion !== undefined && args.ifVersion !== found.version) {
      return refuse(
        'VERSION_MISMATCH',
        `entry ${describeTarget(args)} is at version ${found.version}, not ${String(args.ifVersion)}`,
      );
    }
    switch (op) {
      case 'update': {
        const updated = { ...found, value: args.value as Uint8Array, version };
        const entries = map.entries.map((e) => (e.index === found.index ? updated : e));
        return {
          ok: true,
          state: { ...map, entries },
          result: { ...entryOf(updated), previous: entryOf(found) },
        };
      }
      case 'remove': {
        const entries = map.entries.filter((e) => e.index !== found.index);
        return { ok: true, state: { ...map, entries }, result: { previous: entryOf(found), version } };
      }
      default:
        assert(false, () => `indexed map has no write ${op}`);
    }
  },
  read(op, { state, args, version }) {
    const map = state ?? { nextIndex: 1, entries: [] };
    switch (op) {
      case 'get': {
        const found = lookup(map, args);
        return found === null ? null : entryOf(found);
      }
      case 'first':
        return nullableEntry(map.entries[0]);
      case 'last':
        return nullableEntry(map.entries.at(-1));
      case 'next':
        return nullableEntry(map.entries.find((e) => e.index > (args.index as number)));
      case 'prev':
        return nullableEntry(map.entries.findLast((e) => e.index < (args.index as number)));
      case 'size':
        return { size: map.entries.length, version };
      case 'entries': {
        const after = (args.after as number | undefined) ?? 0;
        const limit = (args.limit as number | undefined) ?? primitiveValuesMax;
        const rest = map.entries.filter((e) => e.index > after);
        return { entries: rest.slice(0, limit).map(entryOf), more: rest.length > limit, version };
      }
      default:
        assert(false, () => `indexed map has no read ${op}`);
    }
  },
  sessionsOf: () => [],
  sessionGone: (state) => state,
};

function lookup(map: IndexedMapState, args: Readonly<Record<string, unknown>>): IndexedEntry | null {
  if (args.key !== undefined) return map.entries.find((e) => e.key === args.key) ?? null;
  if (args.index !== undefined) return map.entries.find((e) => e.index === args.index) ?? null;
  return null;
}

function describeTarget(args: Readonly<Record<string, unknown>>): string {
  return args.key !== undefined ? `with key ${JSON.stringify(args.key)}` : `at index ${String(args.index)}`;
}

function entryOf(e: IndexedEntry): { key: string; index: number; value: Uint8Array; version: number } {
  return { key: e.key, index: e.index, value: e.value, version: e.version };
}

function nullableEntry(e: IndexedEntry | undefined): ReturnType<typeof entryOf> | null {
  return e === undefined ? null : entryOf(e);
}
