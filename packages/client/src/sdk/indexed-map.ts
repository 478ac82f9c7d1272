import { primitivePageEntriesMax } from '@conclave/protocol';
import { badResponse, ConclaveClientError } from '../errors.js';
import {
  isCode,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
import type { Codec } from './codec.js';
import { type EventsOptions, type StreamItem, streamOf } from './events.js';
import { boolean, bytes, type Fields, fields, integer, list } from './wire.js';

/** One entry of an indexed map: its key, its place in the order, its value and version. */
export interface IndexedEntry<V> {
  readonly key: string;
  /** Its place in the order of appends: larger than every index before it, never reused. */
  readonly index: number;
  readonly value: V;
  /** The Raft index of the entry's last write (`ifVersion` compares with it). */
  readonly version: number;
}

/** Which entry: by key or by index. */
export type IndexedTarget = { readonly key: string } | { readonly index: number };

/** Options of an iteration over an indexed map's entries. */
export interface IndexedPageOptions extends ReadCallOptions {
  /** Entries per request, 1 to 1000 (default 1000). */
  readonly pageSize?: number;
}

/**
 * A map that keeps the order of its appends: each key is appended once and gets an index,
 * larger than every index before it; entries are read by key or by index and walked in
 * order. Wholly in one group and one row: at most 1,024 entries, every operation totally
 * ordered.
 */
export class ConclaveIndexedMap<V> {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.target = { kind: 'indexedmap', name };
  }

  /**
   * Appends `key` with `value` at the end of the order; its index and version. A key appends
   * once: null (nothing written) when it is present.
   */
  async append(
    key: string,
    value: V,
    options: WriteCallOptions = {},
  ): Promise<{ key: string; index: number; version: number } | null> {
    try {
      const { result } = await this.caller.write(
        this.target,
        'append',
        { key, value: this.codec.encode(value) },
        options,
      );
      const o = fields(result, 'indexedmap append');
      return {
        key: keyField(o, 'indexedmap append'),
        index: integer(o, 'index', 'indexedmap append'),
        version: integer(o, 'version', 'indexedmap append'),
      };
    } catch (error) {
      if (isCode(error, 'VERSION_MISMATCH')) return null;
      throw error;
    }
  }

  /** The entry with this key or at this index; null when there is none. */
  async get(which: IndexedTarget, options: ReadCallOptions = {}): Promise<IndexedEntry<V> | null> {
    return this.readEntry('get', targetArgs(which), options);
  }

  /**
   * Replaces the entry's value (with `ifVersion`: only at that version of the entry, else
   * VERSION_MISMATCH); returns the entry after and before, or null when there is none.
   */
  async update(
    which: IndexedTarget,
    value: V,
    options: WriteCallOptions & { readonly ifVersion?: number } = {},
  ): Promise<{ entry: IndexedEntry<V>; previous: IndexedEntry<V> } | null> {
    const args = { ...targetArgs(which), value: this.codec.encode(value), ifVersion: options.ifVersion };
    try {
      const { result } = await this.caller.write(this.target, 'update', args, options);
      const o = fields(result, 'indexedmap update');
      return {
        entry: this.decodeEntry(o, 'indexedmap update'),
        previous: this.decodeEntry(o.previous, 'indexedmap update.previous'),
      };
    } catch (error) {
      if (isCode(error, 'KEY_NOT_FOUND')) return null;
      throw error;
    }
  }

  /**
   * Removes the entry (with `ifVersion`: only at that version, else VERSION_MISMATCH);
   * returns it, or null when there is none. Its index is not reused.
   */
  async remove(
    which: IndexedTarget,
    options: WriteCallOptions & { readonly ifVersion?: number } = {},
  ): Promise<IndexedEntry<V> | null> {
    const args = { ...targetArgs(which), ifVersion: options.ifVersion };
    try {
      const { result } = await this.caller.write(this.target, 'remove', args, options);
      return this.decodeEntry(fields(result, 'indexedmap remove').previous, 'indexedmap remove.previous');
    } catch (error) {
      if (isCode(error, 'KEY_NOT_FOUND')) return null;
      throw error;
    }
  }

  /** The entry first in order; null when empty. */
  async first(options: ReadCallOptions = {}): Promise<IndexedEntry<V> | null> {
    return this.readEntry('first', {}, options);
  }

  /** The entry last in order; null when empty. */
  async last(options: ReadCallOptions = {}): Promise<IndexedEntry<V> | null> {
    return this.readEntry('last', {}, options);
  }

  /** The first entry after `index` in order (the index need not be present); null at the end. */
  async next(index: number, options: ReadCallOptions = {}): Promise<IndexedEntry<V> | null> {
    return this.readEntry('next', { index }, options);
  }

  /** The last entry before `index` in order; null at the start. */
  async prev(index: number, options: ReadCallOptions = {}): Promise<IndexedEntry<V> | null> {
    return this.readEntry('prev', { index }, options);
  }

  async size(options: ReadCallOptions = {}): Promise<number> {
    const { result } = await this.caller.read(this.target, 'size', {}, options);
    return integer(fields(result, 'indexedmap size'), 'size', 'indexedmap size');
  }

  /** Removes every entry (indexes go on growing); returns how many there were. */
  async clear(options: WriteCallOptions = {}): Promise<number> {
    const { result } = await this.caller.write(this.target, 'clear', {}, options);
    return integer(fields(result, 'indexedmap clear'), 'removed', 'indexedmap clear');
  }

  /**
   * Every entry in order, a page at a time (each page after the last index read, so writes
   * between pages neither repeat nor skip an entry present throughout).
   */
  async *entries(options: IndexedPageOptions = {}): AsyncGenerator<IndexedEntry<V>, void, undefined> {
    const limit = options.pageSize ?? primitivePageEntriesMax;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > primitivePageEntriesMax) {
      throw new ConclaveClientError({
        code: 'USAGE',
        message: `pageSize must be an integer from 1 to ${primitivePageEntriesMax}, not ${limit}`,
      });
    }
    let after = 0;
    for (;;) {
      const { result } = await this.caller.read(this.target, 'entries', { after, limit }, options);
      const page = fields(result, 'indexedmap entries');
      const entries = this.decodeEntries(page);
      for (const entry of entries) yield entry;
      const last = entries.at(-1);
      if (!boolean(page, 'more', 'indexedmap entries') || last === undefined) return;
      after = last.index;
    }
  }

  /**
   * The map's changes (see StreamItem): a `reset` with every entry now (unless resuming
   * `after` a version), then a `change` with every entry after each write, oldest first,
   * each once. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<IndexedEntry<V>[]>, void, undefined> {
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'entries', {}, placement);
        return {
          state: this.decodeEntries(fields(answer.result, 'indexedmap entries')),
          index: answer.index,
        };
      },
      decode: (wire) => (wire === null ? [] : this.decodeEntries(fields(wire, 'indexedmap event'))),
    });
  }

  private async readEntry(
    op: string,
    args: Readonly<Record<string, unknown>>,
    options: ReadCallOptions,
  ): Promise<IndexedEntry<V> | null> {
    const { result } = await this.caller.read(this.target, op, args, options);
    return result === null ? null : this.decodeEntry(result, `indexedmap ${op}`);
  }

  private decodeEntries(page: Fields): IndexedEntry<V>[] {
    return list(page, 'entries', 'indexedmap entries').map((entry) =>
      this.decodeEntry(entry, 'indexedmap entry'),
    );
  }

  private decodeEntry(wire: unknown, what: string): IndexedEntry<V> {
    const o = fields(wire, what);
    return {
      key: keyField(o, what),
      index: integer(o, 'index', what),
      value: this.codec.decode(bytes(o, 'value', what)),
      version: integer(o, 'version', what),
    };
  }
}

function targetArgs(which: IndexedTarget): { key: string } | { index: number } {
  return 'key' in which ? { key: which.key } : { index: which.index };
}

function keyField(o: Fields, what: string): string {
  if (typeof o.key !== 'string') throw badResponse(`${what}.key is not a string`);
  return o.key;
}
