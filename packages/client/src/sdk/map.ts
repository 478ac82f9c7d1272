import { primitiveTxnStepsMax } from '@conclave/protocol';
import type { CallOptions } from '../call.js';
import { badResponse, ConclaveClientError } from '../errors.js';
import {
  isCode,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
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
import { conditions, type ValueWriteOptions, type Written, written } from './value.js';
import { bytes, fields, integer, integerOrNull, list, type Versioned, versioned } from './wire.js';

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

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
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

  /**
   * Each group's index now: pass it as `events({ after })` to follow every change from
   * now. Read it before reading the entries to mirror them without a gap.
   */
  async cursors(options: CallOptions = {}): Promise<Record<number, number>> {
    return groupCursorsOf({ caller: this.caller, target: this.target, signal: options.signal });
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

  /**
   * A transaction over keys of one group: its steps run in order, each seeing the ones
   * before, and apply all or none (see MapTransaction). Keys share a group when they share a
   * `{hash tag}`: `{order-7}/a` and `{order-7}/b` always do.
   */
  transaction(): MapTransaction<V> {
    return new MapTransaction(this.caller, this.target, this.codec);
  }

  /**
   * One key's changes (`{ key }`: a `reset` with its entry now unless resuming `after` a
   * version, then a `change` at every write of it, null when removed), or every key's (no
   * key: one cursor per group, see GroupStreamItem). Ends when `signal` aborts.
   */
  events(
    options: EventsOptions & { readonly key: string },
  ): AsyncGenerator<StreamItem<Versioned<V> | null>, void, undefined>;
  events(
    options?: GroupEventsOptions & { readonly key?: undefined },
  ): AsyncGenerator<GroupStreamItem<MapChange<V>>, void, undefined>;
  events(
    options:
      | (EventsOptions & { readonly key: string })
      | (GroupEventsOptions & { readonly key?: undefined }) = {},
  ): AsyncGenerator<StreamItem<Versioned<V> | null> | GroupStreamItem<MapChange<V>>, void, undefined> {
    if (options.key === undefined) {
      return groupStreamOf({
        caller: this.caller,
        target: this.target,
        events: options as GroupEventsOptions,
        decode: ({ key, state }) => ({ key, entry: versioned(state, this.codec, 'map event') }),
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
        return { state: versioned(answer.result, this.codec, 'map get'), index: answer.index };
      },
      decode: (wire) => versioned(wire, this.codec, 'map event'),
    });
  }
}

/** What a map's whole stream says of one change: the key and its entry after it (null when it went). */
export interface MapChange<V> {
  readonly key: string;
  readonly entry: Versioned<V> | null;
}

function keyField(o: Readonly<Record<string, unknown>>): string {
  if (typeof o.key !== 'string') throw badResponse('map entry.key is not a string');
  return o.key;
}

/** One step's outcome in a committed transaction. */
export interface TransactionStepResult<V> {
  readonly op: 'put' | 'insert' | 'update' | 'remove';
  readonly key: string;
  /** The entry's version after the step; null for a remove of an absent key. */
  readonly version: number | null;
  /** The entry before the step; null when absent. */
  readonly previous: Versioned<V> | null;
}

/** A committed transaction: the Raft index it applied at, and each step's outcome in order. */
export interface TransactionResult<V> {
  readonly version: number;
  readonly results: readonly TransactionStepResult<V>[];
}

/**
 * A refused transaction: nothing applied. `code` says why (VERSION_MISMATCH: an `ifVersion`
 * or an insert of a present key; KEY_NOT_FOUND: an update of an absent one;
 * TXN_CROSS_GROUP: the keys are in more than one group; …) and `step` which step failed
 * (from 0), or null when the transaction as a whole was refused.
 */
export class TransactionError extends ConclaveClientError {
  readonly step: number | null;

  /** @internal Thrown by `MapTransaction.commit()`. */
  constructor(cause: ConclaveClientError) {
    super({
      code: cause.code,
      message: cause.message,
      advice: cause.advice,
      httpStatus: cause.httpStatus,
      leaderId: cause.leaderId,
    });
    const step = /\bstep (\d+):/.exec(cause.message)?.[1];
    this.step = step === undefined ? null : Number(step);
  }
}

interface Step {
  readonly op: TransactionStepResult<unknown>['op'];
  readonly key: string;
  readonly value?: Uint8Array;
  readonly ifVersion?: number;
}

/**
 * Steps on one map, committed together: `commit()` applies all of them or none (exactly
 * once, as every write). Up to 64 steps, on keys of one group (a shared `{hash tag}`);
 * others are refused with TXN_CROSS_GROUP. The builder can be committed once.
 */
export class MapTransaction<V> {
  private readonly steps: Step[] = [];
  private committed = false;

  /** @internal Made by `map.transaction()`. */
  constructor(
    private readonly caller: PrimitiveCaller,
    private readonly target: PrimitiveTarget,
    private readonly codec: Codec<V>,
  ) {}

  /** Sets the entry (with `ifVersion`: only at that version, 0 for absent). */
  put(key: string, value: V, options: { readonly ifVersion?: number } = {}): this {
    return this.add({ op: 'put', key, value: this.codec.encode(value), ...ifVersionOf(options) });
  }

  /** Adds the entry; the transaction is refused (VERSION_MISMATCH) if the key is present. */
  insert(key: string, value: V): this {
    return this.add({ op: 'insert', key, value: this.codec.encode(value) });
  }

  /** Replaces the entry; refused (KEY_NOT_FOUND) if absent, (VERSION_MISMATCH) at another version. */
  update(key: string, value: V, options: { readonly ifVersion?: number } = {}): this {
    return this.add({ op: 'update', key, value: this.codec.encode(value), ...ifVersionOf(options) });
  }

  /** Removes the entry (a no-op step if absent; with `ifVersion`, refused at another version). */
  remove(key: string, options: { readonly ifVersion?: number } = {}): this {
    return this.add({ op: 'remove', key, ...ifVersionOf(options) });
  }

  /** Applies every step or none; a refusal throws TransactionError naming the step. */
  async commit(options: WriteCallOptions = {}): Promise<TransactionResult<V>> {
    if (this.committed) throw usage('this transaction was committed already: build another');
    if (this.steps.length === 0) throw usage('a transaction needs at least one step');
    this.committed = true;
    let result: unknown;
    try {
      ({ result } = await this.caller.write(this.target, 'transaction', { steps: this.steps }, options));
    } catch (error) {
      if (error instanceof ConclaveClientError && error.httpStatus !== null && error.httpStatus < 500) {
        throw new TransactionError(error);
      }
      throw error;
    }
    const o = fields(result, 'map transaction');
    const results = list(o, 'results', 'map transaction').map((wire, i): TransactionStepResult<V> => {
      const step = this.steps[i];
      if (step === undefined) throw badResponse('map transaction.results has more results than steps');
      const what = `map transaction.results[${i}]`;
      const r = fields(wire, what);
      return {
        op: step.op,
        key: step.key,
        version: integerOrNull(r, 'version', what),
        previous: versioned(r.previous, this.codec, `${what}.previous`),
      };
    });
    return { version: integer(o, 'version', 'map transaction'), results };
  }

  private add(step: Step): this {
    if (this.committed) throw usage('this transaction was committed already: build another');
    if (this.steps.length >= primitiveTxnStepsMax) {
      throw usage(`a transaction takes at most ${primitiveTxnStepsMax} steps`);
    }
    this.steps.push(step);
    return this;
  }
}

function ifVersionOf(options: { readonly ifVersion?: number }): { ifVersion?: number } {
  return options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion };
}

function usage(message: string): ConclaveClientError {
  return new ConclaveClientError({ code: 'USAGE', message });
}
