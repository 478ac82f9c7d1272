import type { CallOptions } from '../call.js';
import {
  isCode,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
import type { Codec } from './codec.js';
import { type EventsOptions, type StreamItem, statesOf, streamOf } from './events.js';
import { fields, integer, type Versioned, versioned } from './wire.js';

/** What a write of a value or a map entry did: its new version, and what it replaced. */
export interface Written<V> {
  /** The Raft index of the write: the entry's new version. */
  readonly version: number;
  /** The value before the write and its version; null when there was none. */
  readonly previous: Versioned<V> | null;
}

/** Options of a write that may be made conditional and bound to the session. */
export interface ValueWriteOptions extends WriteCallOptions {
  /** Write only if the current version is this one (0: never written); else VERSION_MISMATCH. */
  readonly ifVersion?: number;
  /** Bind the value to the session: it is deleted when the session ends. */
  readonly ephemeral?: boolean;
  /**
   * Delete it this long after the write, ms (1 s to 1 day), unless written again first; the
   * group leader's clock counts, so it may live up to about twice that across a new leader.
   */
  readonly ttlMs?: number;
}

/**
 * A register: one value of type V (bytes through the codec), or none. Its version is the
 * Raft index of its last write and only grows; `ifVersion` makes a write conditional on it.
 */
export class ConclaveValue<V> {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.target = { kind: 'value', name };
  }

  /** The value and its version; null when none was written or it was deleted. */
  async get(options: ReadCallOptions = {}): Promise<Versioned<V> | null> {
    const { result } = await this.caller.read(this.target, 'get', {}, options);
    return this.decodeGet(result);
  }

  async set(value: V, options: ValueWriteOptions = {}): Promise<Written<V>> {
    const args = { value: this.codec.encode(value), ...conditions(options) };
    const { result } = await this.caller.write(this.target, 'set', args, options);
    return written(result, this.codec, 'value set');
  }

  /** Writes if the version is `ifVersion` (0: never written); false (nothing written) if not. */
  async compareAndSet(
    value: V,
    ifVersion: number,
    options: Omit<ValueWriteOptions, 'ifVersion'> = {},
  ): Promise<boolean> {
    const args = { value: this.codec.encode(value), ...conditions(options), ifVersion };
    try {
      await this.caller.write(this.target, 'compareAndSet', args, options);
      return true;
    } catch (error) {
      if (isCode(error, 'VERSION_MISMATCH')) return false;
      throw error;
    }
  }

  /**
   * Deletes the value; true if there was one. With `ifVersion`, only at that version:
   * false (nothing deleted) at another.
   */
  async delete(options: WriteCallOptions & { readonly ifVersion?: number } = {}): Promise<boolean> {
    try {
      const { result } = await this.caller.write(
        this.target,
        'delete',
        { ifVersion: options.ifVersion },
        options,
      );
      return written(result, this.codec, 'value delete').previous !== null;
    } catch (error) {
      if (options.ifVersion !== undefined && isCode(error, 'VERSION_MISMATCH')) return false;
      throw error;
    }
  }

  /**
   * The value now, then after every change (null when deleted), in order: built on
   * `events()`, so no change is left out or merged with the next. With `index` (above 0),
   * starts after that version instead (no first value). Ends when `signal` aborts.
   */
  watch(options: CallOptions & { readonly index?: number } = {}): AsyncGenerator<Versioned<V> | null> {
    const { index, ...rest } = options;
    return statesOf(
      this.events({ ...rest, ...(index === undefined || index === 0 ? {} : { after: index }) }),
    );
  }

  /**
   * The register's changes as a stream (see StreamItem): a `reset` with the value now (unless
   * resuming `after` a version), then a `change` at every write, oldest first, each once.
   * Resume with `after` set to the last item's version to go on without a gap or a
   * duplicate. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<Versioned<V> | null>, void, undefined> {
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'get', {}, placement);
        return { state: this.decodeGet(answer.result), index: answer.index };
      },
      decode: (wire) => (wire === null ? null : this.decodeGet(wire)),
    });
  }

  private decodeGet(result: unknown): Versioned<V> | null {
    const o = fields(result, 'value get');
    return o.value === null ? null : versioned(o, this.codec, 'value get');
  }
}

/** A write's conditions and bindings as arguments (absent ones are left out of the body). */
export function conditions(options: ValueWriteOptions) {
  return { ifVersion: options.ifVersion, ephemeral: options.ephemeral, ttlMs: options.ttlMs };
}

export function written<V>(result: unknown, codec: Codec<V>, what: string): Written<V> {
  const o = fields(result, what);
  return { version: integer(o, 'version', what), previous: versioned(o.previous, codec, `${what}.previous`) };
}
