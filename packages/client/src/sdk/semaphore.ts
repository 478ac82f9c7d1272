import type { CallOptions } from '../call.js';
import { anySignal, withSignal } from './abort.js';
import {
  isRefusal,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
import { type EventsOptions, type StreamItem, streamOf } from './events.js';
import { Hold } from './hold.js';
import { type AcquireOptions, holderWaitMs, timedOut } from './lock.js';
import { expired, type Lease } from './session.js';
import type { LocalTurns } from './turns.js';
import { boolean, type Fields, fields, integer } from './wire.js';

/** A semaphore's state, as `availablePermits` reads it. */
export interface SemaphoreState {
  /** Permits free now (0 when setPermits cut below what is held). */
  readonly available: number;
  /** Permits in all. */
  readonly permits: number;
  /** Sessions waiting. */
  readonly waiters: number;
  /** Permits this connection's session holds (0 without a session). */
  readonly held: number;
  /** This session's place in line from 1; 0 when not waiting. */
  readonly position: number;
}

/** Options of an acquisition: how many permits (default 1). */
export interface PermitsOptions {
  readonly permits?: number;
}

/**
 * A counting semaphore. Permits are held by the connection's session, so a crashed
 * process's permits come back when its session ends; waiters are served first come, first
 * served (a large request at the head is not passed by smaller ones). Set the permits
 * (`setPermits`) before acquiring: asking for more than there are fails with
 * PERMITS_INVALID.
 */
export class ConclaveSemaphore {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    /** This connection's turns for the name, looked up at each use (idle ones are forgotten). */
    private readonly turns: () => LocalTurns,
  ) {
    this.target = { kind: 'semaphore', name };
  }

  /** Sets the permits in all; waiters that now fit are served. */
  async setPermits(permits: number, options: WriteCallOptions = {}): Promise<void> {
    await this.caller.write(this.target, 'setPermits', { permits }, options);
  }

  /**
   * Waits until `permits` (default 1) are this caller's: queued on the server once, then
   * followed with blocking reads. With `timeoutMs`, resolves to null if not granted in
   * time; aborting `signal` rejects with its reason; either way it leaves the line first.
   */
  acquire(options?: PermitsOptions & CallOptions): Promise<PermitsHandle>;
  acquire(
    options: PermitsOptions & AcquireOptions & { readonly timeoutMs: number },
  ): Promise<PermitsHandle | null>;
  async acquire(options: PermitsOptions & AcquireOptions = {}): Promise<PermitsHandle | null> {
    const permits = options.permits ?? 1;
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const giveUp = anySignal(options.signal, timeout);
    // The server lines a session up once: this process's callers take turns to wait.
    let pass: () => void;
    try {
      pass = await this.turns().take(giveUp);
    } catch (error) {
      if (timedOut(error, timeout)) return null;
      throw error;
    }
    try {
      const lease = await this.caller.session.lease(giveUp);
      const granted = await this.acquireFor({ lease, permits, signal: options.signal, timeout });
      return granted ? this.handle(lease, permits) : null;
    } catch (error) {
      if (timedOut(error, timeout)) return null;
      throw error;
    } finally {
      pass();
    }
  }

  /** `permits` (default 1) if free now and nobody waits, else null; never waits in line. */
  async tryAcquire(options: PermitsOptions & CallOptions = {}): Promise<PermitsHandle | null> {
    const permits = options.permits ?? 1;
    const lease = await this.caller.session.lease(options.signal);
    let acquired: boolean;
    try {
      // No signal on the write: permits granted must not go unknown.
      const { result } = await this.caller.write(this.target, 'tryAcquire', { permits }, { lease });
      acquired = boolean(fields(result, 'semaphore tryAcquire'), 'acquired', 'semaphore tryAcquire');
    } catch (error) {
      if (isRefusal(error)) throw error;
      throw this.giveUp(lease, error, 'could not learn whether its tryAcquire applied');
    }
    if (acquired && options.signal?.aborted === true) await this.releaseQuietly(lease, permits);
    options.signal?.throwIfAborted();
    return acquired ? this.handle(lease, permits) : null;
  }

  /** Gives back `permits` (default 1) of those the session holds; waiters that fit are served. */
  async release(permits = 1, options: CallOptions = {}): Promise<void> {
    const lease = await this.caller.session.lease(options.signal);
    await this.caller.write(this.target, 'release', { permits }, { lease, ...withSignal(options.signal) });
  }

  /** Takes every free permit for the session; returns how many (release them with release(n)). */
  async drain(options: CallOptions = {}): Promise<number> {
    const lease = await this.caller.session.lease(options.signal);
    const { result } = await this.caller.write(
      this.target,
      'drain',
      {},
      { lease, ...withSignal(options.signal) },
    );
    return integer(fields(result, 'semaphore drain'), 'drained', 'semaphore drain');
  }

  /** The permits free and in all, the waiters, and what this connection's session holds. */
  async availablePermits(options: ReadCallOptions = {}): Promise<SemaphoreState> {
    const session = this.caller.session.peek()?.id;
    const args = session === undefined ? {} : { session };
    const { result } = await this.caller.read(this.target, 'availablePermits', args, options);
    return decodeState(fields(result, 'semaphore availablePermits'));
  }

  /**
   * The semaphore's changes (see StreamItem): a `reset` with its state now (unless resuming
   * `after` a version), then a `change` at every write, oldest first, each once. The states
   * are no session's: `held` and `position` are 0. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<SemaphoreState>, void, undefined> {
    const empty: SemaphoreState = { available: 0, permits: 0, waiters: 0, held: 0, position: 0 };
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'availablePermits', {}, placement);
        return {
          state: decodeState(fields(answer.result, 'semaphore availablePermits')),
          index: answer.index,
        };
      },
      decode: (wire) => (wire === null ? empty : decodeState(fields(wire, 'semaphore event'))),
    });
  }

  private handle(lease: Lease, permits: number): PermitsHandle {
    return new PermitsHandle({ caller: this.caller, target: this.target, lease, permits });
  }

  /**
   * True once granted; false when `timeout` fired first. As ConclaveLock's acquireFor:
   * whatever ends the wait early, the session leaves the line first.
   */
  private async acquireFor(options: {
    lease: Lease;
    permits: number;
    signal: AbortSignal | undefined;
    timeout: AbortSignal | undefined;
  }): Promise<boolean> {
    const { lease, permits, signal, timeout } = options;
    let granted: boolean;
    try {
      const { result } = await this.caller.write(this.target, 'acquire', { permits }, { lease });
      granted = boolean(fields(result, 'semaphore acquire'), 'acquired', 'semaphore acquire');
    } catch (error) {
      if (isRefusal(error)) throw error;
      // Applied or not, granted or queued: no answer can tell, as permits carry no fence.
      throw this.giveUp(lease, error, 'could not learn whether its acquire applied');
    }
    if (!granted) {
      try {
        granted = await this.waitForGrant({
          lease,
          permits,
          signal: anySignal(signal, timeout, lease.signal),
        });
      } catch (error) {
        const gaveUp = signal?.aborted === true || timeout?.aborted === true;
        granted = await this.leaveLine(lease, error);
        if (!gaveUp && !granted) throw error;
      }
    }
    if (granted && signal?.aborted === true) {
      await this.releaseQuietly(lease, permits);
      granted = false;
    }
    signal?.throwIfAborted();
    return granted;
  }

  /**
   * Follows the session's place in line with consistent blocking reads (see ConclaveLock)
   * until it is out of line: granted then, since only a grant, this code's cancel or the
   * session's end takes a waiter out of line, and the end takes its permits too.
   */
  private async waitForGrant(options: {
    lease: Lease;
    permits: number;
    signal: AbortSignal | undefined;
  }): Promise<boolean> {
    const { lease, permits, signal } = options;
    let index = 0;
    for (;;) {
      const answer = await this.caller.read(
        this.target,
        'availablePermits',
        { session: lease.id },
        { consistency: 'consistent', index, waitMs: holderWaitMs, ...withSignal(signal) },
      );
      const state = decodeState(fields(answer.result, 'semaphore availablePermits'));
      if (state.position === 0) {
        if (state.held >= permits) return true;
        throw expired(
          `session ${lease.id} no longer waits for semaphore ${JSON.stringify(this.name)}: it ended`,
        );
      }
      index = answer.index;
    }
  }

  /**
   * Leaves the line; true if the permits were granted meanwhile (the session holds them).
   * If the cancel fails too, the session is given up (see giveUp) and `cause` thrown.
   */
  private async leaveLine(lease: Lease, cause: unknown): Promise<boolean> {
    lease.check();
    try {
      const { result } = await this.caller.write(this.target, 'cancel', {}, { lease });
      // A cancel that took the session out of line changed the state, and such an answer
      // carries `available`; one that found it out of line already changed nothing: the
      // grant came first (the session's end would have failed the cancel SESSION_EXPIRED).
      return fields(result, 'semaphore cancel').available === undefined;
    } catch (failure) {
      throw this.giveUp(lease, cause, `could not leave the line (${(failure as Error).message})`);
    }
  }

  /**
   * Gives the session up (destroying it releases whatever it holds) when it may hold
   * permits nobody knows of; returns what to throw: the session's end, if it ended first,
   * else `cause`.
   */
  private giveUp(lease: Lease, cause: unknown, why: string): unknown {
    if (lease.ended) return lease.signal.reason;
    this.caller.session.abandon(
      lease,
      expired(`session ${lease.id} was given up: on semaphore ${JSON.stringify(this.name)} it ${why}`),
    );
    return cause;
  }

  private async releaseQuietly(lease: Lease, permits: number): Promise<void> {
    await this.caller.write(this.target, 'release', { permits }, { lease }).catch(() => undefined);
  }
}

/**
 * Permits held by the connection's session. They are lost when the session ends (`lost`,
 * the 'lost' event, `signal`); `release()` then throws LOCK_LOST. `await using` releases
 * them at the end of the block.
 */
export class PermitsHandle extends Hold implements AsyncDisposable {
  readonly name: string;
  readonly permits: number;
  private readonly caller: PrimitiveCaller;
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(options: { caller: PrimitiveCaller; target: PrimitiveTarget; lease: Lease; permits: number }) {
    super(options.lease, {
      lostCode: 'LOCK_LOST',
      what: `${options.permits} permits of semaphore ${JSON.stringify(options.target.name)}`,
      onEnd: () => undefined,
    });
    this.caller = options.caller;
    this.target = options.target;
    this.name = options.target.name;
    this.permits = options.permits;
  }

  /** Gives the permits back. Throws LOCK_LOST if they were lost; twice is a no-op. */
  async release(options: CallOptions = {}): Promise<void> {
    this.checkNotLost();
    await this.giveBack({
      write: () =>
        this.caller.write(
          this.target,
          'release',
          { permits: this.permits },
          { lease: this.lease, ...withSignal(options.signal) },
        ),
      lostCodes: ['SESSION_EXPIRED'],
      lostMessage: (error) => `the permits were lost: ${error.message}`,
      whenLost: 'throw',
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.held) await this.release();
  }
}

function decodeState(o: Fields): SemaphoreState {
  const what = 'semaphore availablePermits';
  return {
    available: integer(o, 'available', what),
    permits: integer(o, 'permits', what),
    waiters: integer(o, 'waiters', what),
    held: integer(o, 'held', what),
    position: integer(o, 'position', what),
  };
}
