import { badResponse } from '../errors.js';
import {
  isCode,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
import type { Codec } from './codec.js';
import { type PageOptions, pagesOf, sizeOf } from './pages.js';
import { conditions, type ValueWriteOptions, type Written, written } from './value.js';
import { bytes, fields, integer, type Versioned, versioned } from './wire.js';

/** One entry of a map. */
export interface MapEntry<V> {
  readonly key: string;
  readonly value: V;
  /** The Raft index of the entry's last write. */
  readonly version: number;
}

/**
 * A map from string keys to values of type V (bytes through the codec). Its entries are
 * spread over the cluster's groups by key, so it grows past one group; each entry has its
 * own version for conditional writes.
 */
export class ConclaveMap<V> {
  private readonly target: PrimitiveTarget;

  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.target = { kind: 'map', name };
  }

  async get(key: string, options: ReadCallOptions = {}): Promise<Versioned<V> | null> {
    const { result } = await this.caller.read(this.target, 'get', { key }, options);
    return versioned(result, this.codec, 'map get');
  }

  /** Sets the entry, present or not (with `ifVersion`: only at that version, 0 for absent). */
  async put(key: string, value: V, options: ValueWriteOptions = {}): Promise<Written<V>> {
    const args = { key, value: this.codec.encode(value), ...conditions(options) };
    const { result } = await this.caller.write(this.target, 'put', args, options);
    return written(result, this.codec, 'map put');
  }

  /** Adds the entry if the key is absent; returns its version, or null when the key exists. */
  async insert(
    key: string,
    value: V,
    options: Omit<ValueWriteOptions, 'ifVersion'> = {},
  ): Promise<number | null> {
    const args = { key, value: this.codec.encode(value), ...conditions(options) };
    try {
      const { result } = await this.caller.write(this.target, 'insert', args, options);
      return written(result, this.codec, 'map insert').version;
    } catch (error) {
      if (isCode(error, 'VERSION_MISMATCH')) return null;
      throw error;
    }
  }

  /**
   * Replaces the entry if the key is present (with `ifVersion`, only at that version, else
   * VERSION_MISMATCH); null when the key is absent.
   */
  async update(key: string, value: V, options: ValueWriteOptions = {}): Promise<Written<V> | null> {
    const args = { key, value: this.codec.encode(value), ...conditions(options) };
    try {
      const { result } = await this.caller.write(this.target, 'update', args, options);
      return written(result, this.codec, 'map update');
    } catch (error) {
      if (isCode(error, 'KEY_NOT_FOUND')) return null;
      throw error;
    }
  }

  /** Removes the entry (with `ifVersion`: only at that version); returns it, or null if absent. */
  async remove(
    key: string,
    options: WriteCallOptions & { readonly ifVersion?: number } = {},
  ): Promise<Versioned<V> | null> {
    const { result } = await this.caller.write(
      this.target,
      'remove',
      { key, ifVersion: options.ifVersion },
      options,
    );
    return versioned(fields(result, 'map remove').previous, this.codec, 'map remove.previous');
  }

  /** Entries in all groups. */
  async size(options: ReadCallOptions = {}): Promise<number> {
    return sizeOf(this.caller, this.target, options);
  }

  /** Removes every entry, in every group; returns how many there were. */
  async clear(options: WriteCallOptions = {}): Promise<number> {
    const { result } = await this.caller.write(this.target, 'clear', {}, options);
    return integer(fields(result, 'map clear'), 'removed', 'map clear');
  }

  /** Every entry, page by page across the groups (see pagesOf: no snapshot). */
  async *entries(options: PageOptions = {}): AsyncGenerator<MapEntry<V>, void, undefined> {
    const keyOf = (entry: unknown) => keyField(fields(entry, 'map entry'));
    for await (const wire of pagesOf({
      caller: this.caller,
      target: this.target,
      op: 'entries',
      keyOf,
      read: options,
    })) {
      const o = fields(wire, 'map entry');
      yield {
        key: keyField(o),
        value: this.codec.decode(bytes(o, 'value', 'map entry')),
        version: integer(o, 'version', 'map entry'),
      };
    }
  }
}

function keyField(o: Readonly<Record<string, unknown>>): string {
  if (typeof o.key !== 'string') throw badResponse('map entry.key is not a string');
  return o.key;
}
