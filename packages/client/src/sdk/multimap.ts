import type { CallOptions } from '../call.js';
import { badResponse } from '../errors.js';
import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions, WriteCallOptions } from './caller.js';
import type { Codec } from './codec.js';
import {
  type EventsOptions,
  type GroupEventsOptions,
  type GroupStreamItem,
  groupCursorsOf,
  groupStreamOf,
  type StreamItem,
  streamOf,
} from './events.js';
import { type PageOptions, pagesOf, sizeOf } from './pages.js';
import { boolean, bytes, type Fields, fields, integer, list } from './wire.js';

/** One key of a multimap: its values in the order first put, and the Raft index of its last write. */
export interface MultimapValues<V> {
  readonly values: readonly V[];
  /** 0 when the key holds no value. */
  readonly version: number;
}

/** One key of a multimap and its values, as `entries()` and the whole stream give them. */
export interface MultimapEntry<V> extends MultimapValues<V> {
  readonly key: string;
}

/** What a multimap's whole stream says of one change: the key and its values after it (none when it went). */
export interface MultimapChange<V> {
  readonly key: string;
  readonly values: readonly V[];
}

/** Options of a multimap write: `ifVersion` makes it conditional on the key's version (0: no values). */
export interface MultimapWriteOptions extends WriteCallOptions {
  readonly ifVersion?: number;
}

/**
 * A multimap: each string key holds a set of distinct values of type V (bytes through the
 * codec; distinct as bytes), at most 1,024, in the order first put. Keys are spread over the
 * cluster's groups, as a map's are.
 */
export class ConclaveMultimap<V> {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.target = { kind: 'multimap', name };
  }

  /** The key's values (none when absent) and its version. */
  async get(key: string, options: ReadCallOptions = {}): Promise<MultimapValues<V>> {
    const { result } = await this.caller.read(this.target, 'get', { key }, options);
    return this.decodeValues(result, 'multimap get');
  }

  /** Adds `value` to the key's values; true if it was not among them. */
  async put(key: string, value: V, options: MultimapWriteOptions = {}): Promise<boolean> {
    const args = { key, value: this.codec.encode(value), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'put', args, options);
    return integer(fields(result, 'multimap put'), 'added', 'multimap put') > 0;
  }

  /** Adds each of `values` not yet among the key's; returns how many were added. */
  async putAll(key: string, values: readonly V[], options: MultimapWriteOptions = {}): Promise<number> {
    const args = { key, values: values.map((v) => this.codec.encode(v)), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'putAll', args, options);
    return integer(fields(result, 'multimap putAll'), 'added', 'multimap putAll');
  }

  /** Makes `values` the key's values (none: removes the key); returns the values before. */
  async replace(key: string, values: readonly V[], options: MultimapWriteOptions = {}): Promise<V[]> {
    const args = { key, values: values.map((v) => this.codec.encode(v)), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'replace', args, options);
    return this.decodeList(fields(result, 'multimap replace'), 'previous', 'multimap replace');
  }

  /** Removes `value` from the key's values; true if it was among them. */
  async remove(key: string, value: V, options: MultimapWriteOptions = {}): Promise<boolean> {
    const args = { key, value: this.codec.encode(value), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'remove', args, options);
    return boolean(fields(result, 'multimap remove'), 'removed', 'multimap remove');
  }

  /** Removes the key and all its values; returns them (none when it was absent). */
  async removeAll(key: string, options: MultimapWriteOptions = {}): Promise<V[]> {
    const { result } = await this.caller.write(
      this.target,
      'removeAll',
      { key, ifVersion: options.ifVersion },
      options,
    );
    return this.decodeList(fields(result, 'multimap removeAll'), 'previous', 'multimap removeAll');
  }

  /** True if `value` is among the key's values. */
  async containsEntry(key: string, value: V, options: ReadCallOptions = {}): Promise<boolean> {
    const args = { key, value: this.codec.encode(value) };
    const { result } = await this.caller.read(this.target, 'containsEntry', args, options);
    return boolean(fields(result, 'multimap containsEntry'), 'contains', 'multimap containsEntry');
  }

  /** Key-value pairs in all groups (a key with three values counts three). */
  async size(options: ReadCallOptions = {}): Promise<number> {
    return sizeOf(this.caller, this.target, options);
  }

  /** Removes every key, in every group; returns how many keys there were. */
  async clear(options: WriteCallOptions = {}): Promise<number> {
    const { result } = await this.caller.write(this.target, 'clear', {}, options);
    return integer(fields(result, 'multimap clear'), 'removed', 'multimap clear');
  }

  /**
   * Each group's index now: pass it as `events({ after })` to follow every change from
   * now. Read it before reading the entries to mirror them without a gap.
   */
  async cursors(options: CallOptions = {}): Promise<Record<number, number>> {
    return groupCursorsOf({ caller: this.caller, target: this.target, signal: options.signal });
  }

  /** Every key with its values, page by page across the groups (see pagesOf: no snapshot). */
  async *entries(options: PageOptions = {}): AsyncGenerator<MultimapEntry<V>, void, undefined> {
    for await (const wire of pagesOf({
      caller: this.caller,
      target: this.target,
      op: 'entries',
      keyOf: (entry) => keyField(fields(entry, 'multimap entry')),
      read: options,
    })) {
      const o = fields(wire, 'multimap entry');
      yield { key: keyField(o), ...this.decodeValues(o, 'multimap entry') };
    }
  }

  /**
   * One key's changes (`{ key }`: a `reset` with its values now unless resuming `after` a
   * version, then a `change` at every write of it), or every key's (no key: one cursor per
   * group, see GroupStreamItem). States are the key's values after the change.
   */
  events(
    options: EventsOptions & { readonly key: string },
  ): AsyncGenerator<StreamItem<MultimapValues<V>>, void, undefined>;
  events(
    options?: GroupEventsOptions & { readonly key?: undefined },
  ): AsyncGenerator<GroupStreamItem<MultimapChange<V>>, void, undefined>;
  events(
    options:
      | (EventsOptions & { readonly key: string })
      | (GroupEventsOptions & { readonly key?: undefined }) = {},
  ): AsyncGenerator<StreamItem<MultimapValues<V>> | GroupStreamItem<MultimapChange<V>>, void, undefined> {
    if (options.key === undefined) {
      return groupStreamOf({
        caller: this.caller,
        target: this.target,
        events: options as GroupEventsOptions,
        decode: ({ key, state }) => ({
          key,
          values: state === null ? [] : this.decodeValues(state, 'multimap event').values,
        }),
      });
    }
    const key = options.key;
    return streamOf({
      caller: this.caller,
      target: this.target,
      key,
      events: options as EventsOptions,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'get', { key }, placement);
        return { state: this.decodeValues(answer.result, 'multimap get'), index: answer.index };
      },
      decode: (wire) =>
        wire === null ? { values: [], version: 0 } : this.decodeValues(wire, 'multimap event'),
    });
  }

  private decodeValues(wire: unknown, what: string): MultimapValues<V> {
    const o = fields(wire, what);
    return { values: this.decodeList(o, 'values', what), version: integer(o, 'version', what) };
  }

  private decodeList(o: Fields, name: string, what: string): V[] {
    return list(o, name, what).map((item, i) =>
      this.codec.decode(bytes({ item }, 'item', `${what}.${name}[${i}]`)),
    );
  }
}

function keyField(o: Fields): string {
  if (typeof o.key !== 'string') throw badResponse('multimap entry.key is not a string');
  return o.key;
}
