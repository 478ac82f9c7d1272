import type { CallOptions } from '../call.js';
import { ConclaveClientError } from '../errors.js';
import { anySignal, withSignal } from './abort.js';
import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions } from './caller.js';
import { boolean, fields, integer, list } from './wire.js';

/**
 * One item of a primitive's event stream.
 *
 * - `change`: the primitive changed at `version` (the Raft index of the change), and
 *   `state` is what it is after that change. Changes come oldest first, each once.
 * - `reset`: `state` is the whole state as read at `version`; the changes that follow are
 *   those after `version`. A stream opened without `after` starts with one. A stream also
 *   yields one when the server no longer holds every change after its last version (its
 *   event log was compacted: it keeps the last 8,192 changes of each group, and a restart
 *   starts it afresh): the SDK reads the state again and goes on from there, so a caller
 *   that folds `change`s into a `reset`'s state always ends at the primitive's state.
 */
export type StreamItem<S> =
  | { readonly type: 'change'; readonly version: number; readonly state: S }
  | { readonly type: 'reset'; readonly version: number; readonly state: S };

/** Options of an event stream. */
export interface EventsOptions extends CallOptions {
  /**
   * Resume after this version: the stream yields every change after it, none before, and
   * no first `reset`. Pass the `version` of the last item handled to go on without a gap
   * or a duplicate. Absent: the stream starts with a `reset` holding the state now.
   */
  readonly after?: number;
  /** How long one long-poll waits for a change before it asks again, ms (default 5 minutes). */
  readonly waitMs?: number;
}

/** How long one long-poll of an event stream waits before it asks again, ms. */
export const eventsWaitMs = 5 * 60_000;

/** One event as the server sends it: its version, the entry's key (partitioned kinds), the state after it. */
interface WireEvent {
  readonly version: number;
  readonly key: string | undefined;
  readonly state: unknown;
}

interface WireEvents {
  readonly events: WireEvent[];
  readonly compacted: boolean;
  /** The answer's index: past every change the server had, when compacted. */
  readonly index: number;
}

/** One long-poll of `events`: the changes after `after`, waiting up to `waitMs` for the first. */
export async function pollEvents(options: {
  caller: PrimitiveCaller;
  target: PrimitiveTarget;
  after: number;
  key?: string | undefined;
  group?: number | undefined;
  waitMs: number;
  signal: AbortSignal | undefined;
}): Promise<WireEvents> {
  const { caller, target, after, key, group, waitMs, signal } = options;
  const what = `${target.kind} events`;
  const answer = await caller.read(target, 'events', key === undefined ? { after } : { after, key }, {
    waitMs,
    ...(group === undefined ? {} : { group }),
    ...withSignal(signal),
  });
  const o = fields(answer.result, what);
  const events = list(o, 'events', what).map((wire): WireEvent => {
    const event = fields(wire, `${what} event`);
    const eventKey = event.key;
    if (eventKey !== undefined && typeof eventKey !== 'string') {
      throw new ConclaveClientError({ code: 'BAD_RESPONSE', message: `${what} event.key is not a string` });
    }
    return { version: integer(event, 'version', `${what} event`), key: eventKey, state: event.state };
  });
  return { events, compacted: boolean(o, 'compacted', what), index: answer.index };
}

/**
 * The event stream of a whole primitive (or of one key of a partitioned one): long-polls of
 * `events` from the last version seen. On `compacted` it reads the state again and yields
 * a `reset`, unless the state is the one last yielded. Aborting
 * `signal` ends the iteration (it returns, it does not throw); a call that fails after the
 * transport's retries ends it with that error.
 */
export async function* streamOf<S>(options: {
  caller: PrimitiveCaller;
  target: PrimitiveTarget;
  key?: string;
  /** The state now and the index to resume after (a read's answer index). */
  read: (read: ReadCallOptions) => Promise<{ state: S; index: number }>;
  /** An event's state; null when the row went (the kind's empty state, or null for an entry). */
  decode: (wire: unknown) => S;
  events: EventsOptions;
}): AsyncGenerator<StreamItem<S>, void, undefined> {
  const { caller, target, key, read, decode } = options;
  const { signal } = options.events;
  const waitMs = checkedWait(options.events.waitMs);
  const aborted = () => signal?.aborted === true;
  let cursor = 0;
  /** The answer index of the state last yielded in a reset: a reset of the same adds nothing. */
  let lastReset = -1;
  const reset = async (atLeast: number): Promise<StreamItem<S> | null> => {
    // After a compaction the read is consistent, so that it is at least as new as any
    // change the server answering the poll had; a stream's first read needs no more than
    // the leader's state (the stream resumes after that state's version).
    const now = await read({ ...(atLeast > 0 ? { consistency: 'consistent' } : {}), ...withSignal(signal) });
    cursor = Math.max(now.index, atLeast);
    if (now.index === lastReset) return null;
    lastReset = now.index;
    // The state holds at the cursor too: a consistent read is past every change that the
    // server answering the poll had applied.
    return { type: 'reset', version: cursor, state: now.state };
  };
  try {
    if (options.events.after === undefined) {
      const first = await reset(0);
      if (first !== null) yield first;
    } else {
      cursor = checkedAfter(options.events.after);
    }
    while (!aborted()) {
      const answer = await pollEvents({ caller, target, after: cursor, key, waitMs, signal });
      if (answer.compacted) {
        const item = await reset(answer.index);
        if (item !== null) yield item;
        continue;
      }
      for (const event of answer.events) {
        if (event.version <= cursor) continue;
        cursor = event.version;
        lastReset = -1;
        yield { type: 'change', version: event.version, state: decode(event.state) };
      }
    }
  } catch (error) {
    if (aborted()) return;
    throw error;
  }
}

/** One item of a partitioned primitive's whole stream (every key, one cursor per group). */
export type GroupStreamItem<E> =
  | ({ readonly type: 'change'; readonly group: number; readonly version: number } & E)
  | {
      /**
       * The server no longer holds every change of `group` after the cursor: changes of that
       * group up to `version` may have been missed, and the stream goes on after `version`.
       * A caller that mirrors the entries reads them again (`entries()`).
       */
      readonly type: 'compacted';
      readonly group: number;
      readonly version: number;
    };

/** Options of a partitioned primitive's whole stream. */
export interface GroupEventsOptions extends Omit<EventsOptions, 'after'> {
  /**
   * Each group's version to resume after (the `group` and `version` of the last item seen
   * from it). Groups left out start from now: their changes after the stream opens.
   */
  readonly after?: Readonly<Record<number, number>>;
}

/**
 * Every key's changes of a partitioned primitive: one long-poll per group, in parallel
 * (versions of different groups are different Raft logs, so there is no order between
 * them; within a group, changes come in order, each once). Groups without a cursor in
 * `after` start from their index now. Aborting `signal` ends the iteration; leaving it
 * (`break`) ends the polls.
 */
export async function* groupStreamOf<E>(options: {
  caller: PrimitiveCaller;
  target: PrimitiveTarget;
  decode: (event: { key: string; state: unknown }) => E;
  events: GroupEventsOptions;
}): AsyncGenerator<GroupStreamItem<E>, void, undefined> {
  const { caller, target, decode } = options;
  const waitMs = checkedWait(options.events.waitMs);
  const stop = new AbortController();
  const signal = anySignal(options.events.signal, stop.signal) as AbortSignal;
  const aborted = () => options.events.signal?.aborted === true;
  const after = options.events.after ?? {};
  for (const version of Object.values(after)) checkedAfter(version);
  const queue = new Batches<GroupStreamItem<E>>();
  const onAbort = () => queue.fail(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const follow = async (group: number, start: number) => {
    let cursor = start;
    while (!signal.aborted) {
      const answer = await pollEvents({ caller, target, after: cursor, group, waitMs, signal });
      const items: GroupStreamItem<E>[] = [];
      if (answer.compacted) {
        cursor = Math.max(cursor, answer.index);
        items.push({ type: 'compacted', group, version: cursor });
      } else {
        for (const event of answer.events) {
          if (event.version <= cursor || event.key === undefined) continue;
          cursor = event.version;
          items.push({
            type: 'change',
            group,
            version: event.version,
            ...decode({ key: event.key, state: event.state }),
          });
        }
      }
      if (items.length > 0) await queue.put(items);
    }
  };
  try {
    const now = await groupCursorsOf({ caller, target, signal });
    for (const [group, version] of Object.entries(now)) {
      follow(Number(group), after[Number(group)] ?? version).catch((error: unknown) => queue.fail(error));
    }
    for (;;) yield await queue.take();
  } catch (error) {
    if (aborted()) return;
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
    stop.abort();
  }
}

/**
 * Each group's index now (a consistent read of each): the cursors of a whole stream that
 * starts now. Read them before reading the entries to follow them without a gap.
 */
export async function groupCursorsOf(options: {
  caller: PrimitiveCaller;
  target: PrimitiveTarget;
  signal?: AbortSignal | undefined;
}): Promise<Record<number, number>> {
  const { caller, target, signal } = options;
  const op = target.kind === 'set' ? 'elements' : 'entries';
  const what = `${target.kind} ${op}`;
  const cursors: Record<number, number> = {};
  let groups = 1;
  for (let group = 0; group < groups; group++) {
    const answer = await caller.read(
      target,
      op,
      { limit: 1 },
      { consistency: 'consistent', group, ...withSignal(signal) },
    );
    groups = integer(fields(answer.result, what), 'groups', what);
    cursors[group] = answer.index;
  }
  return cursors;
}

/**
 * Items handed from the groups' polls to the one consumer, a batch at a time: a poll waits
 * until its batch is taken before it asks again, so memory stays bounded by one batch per
 * group.
 */
class Batches<T> {
  private readonly items: T[] = [];
  private readonly drained: (() => void)[] = [];
  private waiter: { resolve: () => void } | null = null;
  private failure: { error: unknown } | null = null;

  async put(batch: readonly T[]): Promise<void> {
    this.items.push(...batch);
    this.wake();
    await new Promise<void>((resolve) => this.drained.push(resolve));
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    for (const resolve of this.drained.splice(0)) resolve();
    this.wake();
  }

  async take(): Promise<T> {
    for (;;) {
      if (this.failure !== null) throw this.failure.error;
      const item = this.items.shift();
      if (item !== undefined) {
        if (this.items.length === 0) for (const resolve of this.drained.splice(0)) resolve();
        return item;
      }
      await new Promise<void>((resolve) => {
        this.waiter = { resolve };
      });
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve();
  }
}

function checkedWait(waitMs: number | undefined): number {
  const wait = waitMs ?? eventsWaitMs;
  if (!Number.isSafeInteger(wait) || wait < 1) {
    throw new ConclaveClientError({
      code: 'USAGE',
      message: `waitMs must be a positive integer, not ${wait}`,
    });
  }
  return wait;
}

function checkedAfter(after: number): number {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new ConclaveClientError({
      code: 'USAGE',
      message: `after must be a version (a non-negative integer), not ${after}`,
    });
  }
  return after;
}

/**
 * The states of a stream: each reset's and each change's. `watch()` is this over `events()`:
 * the state now, then after every change, none left out or merged.
 */
export async function* statesOf<S>(
  stream: AsyncGenerator<StreamItem<S>, void, undefined>,
): AsyncGenerator<S, void, undefined> {
  for await (const item of stream) yield item.state;
}
