import type { CallOptions } from '../call.js';
import { badResponse } from '../errors.js';
import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions, WriteCallOptions } from './caller.js';
import { type GroupEventsOptions, type GroupStreamItem, groupCursorsOf, groupStreamOf } from './events.js';
import { type PageOptions, pagesOf, sizeOf } from './pages.js';
import type { ValueWriteOptions } from './value.js';
import { boolean, fields, integer } from './wire.js';

/** What a set's stream says of one change: the element, and whether it is in the set after it. */
export interface SetChange {
  readonly element: string;
  readonly present: boolean;
}

/**
 * A set of strings, spread over the cluster's groups by element. An element added
 * `ephemeral` goes when the session ends (a membership list of live processes).
 */
export class ConclaveSet {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
  ) {
    this.target = { kind: 'set', name };
  }

  /** True if the element was not in the set (`ephemeral` and `ttlMs` as for a value). */
  async add(
    element: string,
    options: WriteCallOptions & Pick<ValueWriteOptions, 'ephemeral' | 'ttlMs'> = {},
  ): Promise<boolean> {
    const args = { key: element, ephemeral: options.ephemeral, ttlMs: options.ttlMs };
    const { result } = await this.caller.write(this.target, 'add', args, options);
    return boolean(fields(result, 'set add'), 'added', 'set add');
  }

  /** True if the element was in the set. */
  async remove(element: string, options: WriteCallOptions = {}): Promise<boolean> {
    const { result } = await this.caller.write(this.target, 'remove', { key: element }, options);
    return boolean(fields(result, 'set remove'), 'removed', 'set remove');
  }

  async contains(element: string, options: ReadCallOptions = {}): Promise<boolean> {
    const { result } = await this.caller.read(this.target, 'contains', { key: element }, options);
    return boolean(fields(result, 'set contains'), 'contains', 'set contains');
  }

  /** Elements in all groups. */
  async size(options: ReadCallOptions = {}): Promise<number> {
    return sizeOf(this.caller, this.target, options);
  }

  /** Removes every element, in every group; returns how many there were. */
  async clear(options: WriteCallOptions = {}): Promise<number> {
    const { result } = await this.caller.write(this.target, 'clear', {}, options);
    return integer(fields(result, 'set clear'), 'removed', 'set clear');
  }

  /**
   * Every element's changes, one cursor per group (see GroupStreamItem): `present` is
   * true when the element was added, false when it went. Starts from now unless `after`
   * gives the groups' cursors. Ends when `signal` aborts.
   */
  events(options: GroupEventsOptions = {}): AsyncGenerator<GroupStreamItem<SetChange>, void, undefined> {
    return groupStreamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      decode: ({ key, state }) => ({ element: key, present: state !== null }),
    });
  }

  /**
   * Each group's index now: pass it as `events({ after })` to follow every change from
   * now. Read it before reading the entries to mirror them without a gap.
   */
  async cursors(options: CallOptions = {}): Promise<Record<number, number>> {
    return groupCursorsOf({ caller: this.caller, target: this.target, signal: options.signal });
  }

  /** Every element, page by page across the groups (see pagesOf: no snapshot). */
  async *elements(options: PageOptions = {}): AsyncGenerator<string, void, undefined> {
    for await (const wire of pagesOf({
      caller: this.caller,
      target: this.target,
      op: 'elements',
      keyOf: element,
      read: options,
    })) {
      yield element(wire);
    }
  }
}

function element(wire: unknown): string {
  if (typeof wire !== 'string') throw badResponse('set element is not a string');
  return wire;
}
