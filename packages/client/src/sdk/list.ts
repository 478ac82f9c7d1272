import { primitivePageEntriesMax } from '@conclave/protocol';
import { ConclaveClientError } from '../errors.js';
import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions, WriteCallOptions } from './caller.js';
import type { Codec } from './codec.js';
import { type EventsOptions, type StreamItem, streamOf } from './events.js';
import { boolean, bytes, type Fields, fields, integer, list, type Versioned, versioned } from './wire.js';

/** Options of a list write: `ifVersion` makes it conditional on the whole list's version (0: never written). */
export interface ListWriteOptions extends WriteCallOptions {
  readonly ifVersion?: number;
}

/** A list's items and the Raft index of its last write (0: never written). */
export interface ListItems<V> {
  readonly items: readonly V[];
  readonly version: number;
}

/** Options of an iteration over a list's items. */
export interface ListPageOptions extends ReadCallOptions {
  /** Items per request, 1 to 1000 (default 1000). */
  readonly pageSize?: number;
}

/**
 * A list of values of type V (bytes through the codec), wholly in one group and one row:
 * every operation on it is totally ordered. It holds at most 1,024 items (and one row's
 * bytes): a list for coordination, not bulk data. An index past the end fails with
 * INDEX_OUT_OF_RANGE.
 */
export class ConclaveList<V> {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.target = { kind: 'list', name };
  }

  /** Adds `value` at the end; returns its index and the list's new version. */
  async append(value: V, options: ListWriteOptions = {}): Promise<{ index: number; version: number }> {
    const args = { value: this.codec.encode(value), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'append', args, options);
    return placed(result, 'list append');
  }

  /** Inserts `value` at `index` (0 to the size), moving the items from there one on. */
  async insert(
    index: number,
    value: V,
    options: ListWriteOptions = {},
  ): Promise<{ index: number; version: number }> {
    const args = { index, value: this.codec.encode(value), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'insert', args, options);
    return placed(result, 'list insert');
  }

  /** The item at `index` and the list's version; null past the end. */
  async get(index: number, options: ReadCallOptions = {}): Promise<Versioned<V> | null> {
    const { result } = await this.caller.read(this.target, 'get', { index }, options);
    return versioned(result, this.codec, 'list get');
  }

  /** Replaces the item at `index`; returns the one it replaced. */
  async set(index: number, value: V, options: ListWriteOptions = {}): Promise<V> {
    const args = { index, value: this.codec.encode(value), ifVersion: options.ifVersion };
    const { result } = await this.caller.write(this.target, 'set', args, options);
    return this.codec.decode(bytes(fields(result, 'list set'), 'previous', 'list set'));
  }

  /** Removes the item at `index` (the ones after it move one back); returns it. */
  async remove(index: number, options: ListWriteOptions = {}): Promise<V> {
    const { result } = await this.caller.write(
      this.target,
      'remove',
      { index, ifVersion: options.ifVersion },
      options,
    );
    return this.codec.decode(bytes(fields(result, 'list remove'), 'previous', 'list remove'));
  }

  async size(options: ReadCallOptions = {}): Promise<number> {
    const { result } = await this.caller.read(this.target, 'size', {}, options);
    return integer(fields(result, 'list size'), 'size', 'list size');
  }

  /** Removes every item; returns how many there were. */
  async clear(options: ListWriteOptions = {}): Promise<number> {
    const { result } = await this.caller.write(
      this.target,
      'clear',
      { ifVersion: options.ifVersion },
      options,
    );
    return integer(fields(result, 'list clear'), 'removed', 'list clear');
  }

  /**
   * Every item, in order, a page at a time (`after` the last index read). Each page is one
   * read: a write between two pages moves the indexes, so items may then be seen twice or
   * not at all; a list of up to 1,000 items is read in one page by default: a consistent view.
   */
  async *items(options: ListPageOptions = {}): AsyncGenerator<V, void, undefined> {
    const limit = options.pageSize ?? primitivePageEntriesMax;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > primitivePageEntriesMax) {
      throw new ConclaveClientError({
        code: 'USAGE',
        message: `pageSize must be an integer from 1 to ${primitivePageEntriesMax}, not ${limit}`,
      });
    }
    let after: number | undefined;
    for (;;) {
      const args = after === undefined ? { limit } : { after, limit };
      const { result } = await this.caller.read(this.target, 'items', args, options);
      const page = fields(result, 'list items');
      const items = this.decodeItems(page);
      for (const item of items) yield item;
      if (!boolean(page, 'more', 'list items') || items.length === 0) return;
      after = integer(page, 'start', 'list items') + items.length - 1;
    }
  }

  /**
   * The list's changes (see StreamItem): a `reset` with the items now (unless resuming
   * `after` a version), then a `change` with all the items after every write, oldest first,
   * each once. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<ListItems<V>>, void, undefined> {
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'items', {}, placement);
        return { state: this.decodeState(answer.result), index: answer.index };
      },
      decode: (wire) => (wire === null ? { items: [], version: 0 } : this.decodeState(wire)),
    });
  }

  private decodeState(wire: unknown): ListItems<V> {
    const o = fields(wire, 'list items');
    return { items: this.decodeItems(o), version: integer(o, 'version', 'list items') };
  }

  private decodeItems(o: Fields): V[] {
    return list(o, 'items', 'list items').map((item, i) =>
      this.codec.decode(bytes({ item }, 'item', `list items[${i}]`)),
    );
  }
}

function placed(result: unknown, what: string): { index: number; version: number } {
  const o = fields(result, what);
  return { index: integer(o, 'index', what), version: integer(o, 'version', what) };
}
