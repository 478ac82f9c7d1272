import type { LockHolder } from '@conclave/protocol';
import type { CallOptions } from '../call.js';
import { anySignal, withSignal } from './abort.js';
import { isRefusal, type PrimitiveCaller, type PrimitiveTarget, type ReadCallOptions } from './caller.js';
import { type EventsOptions, type StreamItem, streamOf } from './events.js';
import { Hold } from './hold.js';
import type { Lease } from './session.js';
import { expired } from './session.js';
import type { LocalTurns } from './turns.js';
import { fields, integerOrNull, textOrNull, texts } from './wire.js';

/** How long one blocking read of a waiter waits before it asks again, ms. */
export const holderWaitMs = 60_000;

/** Options of a wait for a lock or for permits. */
export interface AcquireOptions extends CallOptions {
  /** Give up after this long, ms: the call then resolves to null. Absent: wait until granted. */
  readonly timeoutMs?: number;
}

/**
 * A fair lock with fencing: one holder at a time, waiters served first come, first served
 * (callers in this process too), and each grant fenced by a number that grows at every
 * hand-off, for the guarded resource to refuse a holder that lost the lock.
 */
export class ConclaveLock {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
    /** This connection's turns for the name, looked up at each use (idle ones are forgotten). */
    private readonly turns: () => LocalTurns,
  ) {
    this.target = { kind: 'lock', name };
  }

  /**
   * Waits until the lock is this caller's. It queues on the server once, then follows the
   * holder with blocking reads. With `timeoutMs`, resolves to null if not granted in time;
   * aborting `signal` rejects with its reason. Either way it leaves the line first (and
   * releases a grant that came at the last moment, when aborted). Rejects with
   * SESSION_EXPIRED if the session ends while it waits.
   */
  acquire(options?: CallOptions): Promise<LockHandle>;
  acquire(options: AcquireOptions & { readonly timeoutMs: number }): Promise<LockHandle | null>;
  async acquire(options: AcquireOptions = {}): Promise<LockHandle | null> {
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const giveUp = anySignal(options.signal, timeout);
    let pass: () => void;
    try {
      pass = await this.turns().take(giveUp);
    } catch (error) {
      if (timedOut(error, timeout)) return null;
      throw error;
    }
    try {
      const lease = await this.caller.session.lease(giveUp);
      const fence = await this.acquireFor({ lease, signal: options.signal, timeout });
      if (fence === null) {
        pass();
        return null;
      }
      return new LockHandle({ caller: this.caller, target: this.target, lease, fence, onEnd: pass });
    } catch (error) {
      pass();
      if (timedOut(error, timeout)) return null;
      throw error;
    }
  }

  /**
   * The lock if it is free now, else null; never waits in line. Aborting `signal` rejects
   * with its reason (releasing a grant that came meanwhile).
   */
  async tryAcquire(options: CallOptions = {}): Promise<LockHandle | null> {
    const pass = this.turns().tryTake();
    if (pass === null) return null;
    try {
      const lease = await this.caller.session.lease(options.signal);
      let fence: number | null;
      try {
        // No signal on the write: a grant must not go unknown (see acquireFor).
        const { result } = await this.caller.write(this.target, 'tryAcquire', {}, { lease });
        fence = integerOrNull(fields(result, 'lock tryAcquire'), 'fence', 'lock tryAcquire');
      } catch (error) {
        if (isRefusal(error)) throw error;
        // It may have granted the lock: cancel tells.
        fence = await this.leaveLine(lease, error);
        if (fence === null) throw error;
      }
      if (fence !== null && options.signal?.aborted === true) await this.releaseQuietly(lease, fence);
      options.signal?.throwIfAborted();
      if (fence === null) {
        pass();
        return null;
      }
      return new LockHandle({ caller: this.caller, target: this.target, lease, fence, onEnd: pass });
    } catch (error) {
      pass();
      throw error;
    }
  }

  /** Who holds the lock (session and fence; null when free) and who waits, in order. */
  async holder(options: ReadCallOptions = {}): Promise<LockHolder> {
    const { result } = await this.caller.read(this.target, 'holder', {}, options);
    return decodeHolder(result);
  }

  /**
   * The lock's changes (see StreamItem): a `reset` with the holder and line now (unless
   * resuming `after` a version), then a `change` at every grant, release, queueing and
   * leaving of the line, oldest first, each once. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<LockHolder>, void, undefined> {
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'holder', {}, placement);
        return { state: decodeHolder(answer.result), index: answer.index };
      },
      decode: (wire) => (wire === null ? { session: null, fence: null, waiters: [] } : decodeHolder(wire)),
    });
  }

  /**
   * The fence once the lock is granted to `lease`, or null when `timeout` fired first.
   * Whatever ends the wait early, the session leaves the line before this returns: a grant
   * nobody waits for would be held, unknown, until the session ends. So the acquire write
   * takes no signal either: once sent, its outcome must be known (its seq is resent until
   * answered, or the line is left).
   */
  private async acquireFor(options: {
    lease: Lease;
    signal: AbortSignal | undefined;
    timeout: AbortSignal | undefined;
  }): Promise<number | null> {
    const { lease, signal, timeout } = options;
    let fence: number | null;
    try {
      const { result } = await this.caller.write(this.target, 'acquire', {}, { lease });
      fence = integerOrNull(fields(result, 'lock acquire'), 'fence', 'lock acquire');
    } catch (error) {
      // Refused: nothing applied. Otherwise it may have: leave the line it may have joined.
      if (isRefusal(error)) throw error;
      fence = await this.leaveLine(lease, error);
      if (fence === null) throw error;
    }
    if (fence === null) {
      try {
        fence = await this.waitForGrant(lease, anySignal(signal, timeout, lease.signal));
      } catch (error) {
        const gaveUp = signal?.aborted === true || timeout?.aborted === true;
        fence = await this.leaveLine(lease, error);
        // Granted while the wait failed: the lock is the caller's after all.
        if (!gaveUp && fence === null) throw error;
      }
    }
    if (fence !== null && signal?.aborted === true) {
      // Granted as the caller gave up: hand it on rather than hold it unknown.
      await this.releaseQuietly(lease, fence);
      fence = null;
    }
    signal?.throwIfAborted();
    return fence;
  }

  /**
   * Leaves the line; the fence if the lock was granted meanwhile, else null. If the cancel
   * fails too, the session may hold a grant nobody knows of: it is given up (destroyed),
   * which releases the lock, and `cause` (why the line is left) is thrown.
   */
  private async leaveLine(lease: Lease, cause: unknown): Promise<number | null> {
    // A session that ended holds nothing and waits for nothing: no line to leave.
    lease.check();
    try {
      const { result } = await this.caller.write(this.target, 'cancel', {}, { lease });
      return integerOrNull(fields(result, 'lock cancel'), 'fence', 'lock cancel');
    } catch (failure) {
      lease.check();
      const why = failure instanceof Error ? failure.message : String(failure);
      this.caller.session.abandon(
        lease,
        expired(
          `session ${lease.id} was given up: it could not leave lock ${JSON.stringify(this.name)}'s line (${why})`,
        ),
      );
      // The lock is not the caller's (the session is given up): report why the wait ended.
      throw cause;
    }
  }

  private async releaseQuietly(lease: Lease, fence: number): Promise<void> {
    await this.caller.write(this.target, 'release', { fence }, { lease }).catch(() => undefined);
  }

  /**
   * Follows the holder with blocking reads until it is `lease`'s session. The reads are
   * consistent: a leader new to its term may not have applied every committed write yet,
   * and a stale holder could be an earlier grant of this session, with an old fence.
   */
  private async waitForGrant(lease: Lease, signal: AbortSignal | undefined): Promise<number> {
    // The first read does not block: the grant may have come before this wait began.
    let index = 0;
    for (;;) {
      const answer = await this.caller.read(
        this.target,
        'holder',
        {},
        { consistency: 'consistent', index, waitMs: holderWaitMs, ...withSignal(signal) },
      );
      const holder = decodeHolder(answer.result);
      if (holder.session === lease.id && holder.fence !== null) return holder.fence;
      // Only the session's end takes a waiter out of line unasked (cancel is this code's).
      if (!holder.waiters.includes(lease.id)) {
        throw expired(`session ${lease.id} no longer waits for lock ${JSON.stringify(this.name)}: it ended`);
      }
      index = answer.index;
    }
  }
}

/**
 * A held lock. `fence` grows at every hand-off of the lock: send it with every write to the
 * guarded resource, which refuses fences below the highest it saw. The lock is lost when
 * the session ends (`lost`, the 'lost' event, `signal`); `release()` then throws LOCK_LOST.
 * `await using` releases it at the end of the block.
 */
export class LockHandle extends Hold implements AsyncDisposable {
  readonly name: string;
  readonly fence: number;
  private readonly caller: PrimitiveCaller;
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(options: {
    caller: PrimitiveCaller;
    target: PrimitiveTarget;
    lease: Lease;
    fence: number;
    onEnd: () => void;
  }) {
    super(options.lease, {
      lostCode: 'LOCK_LOST',
      what: `lock ${JSON.stringify(options.target.name)} (fence ${options.fence})`,
      onEnd: options.onEnd,
    });
    this.caller = options.caller;
    this.target = options.target;
    this.name = options.target.name;
    this.fence = options.fence;
  }

  /**
   * Releases the lock: the next waiter gets it. Throws LOCK_LOST if it was lost (the
   * session ended, or the server no longer knows this fence as the holder). Releasing
   * twice is a no-op.
   */
  async release(options: CallOptions = {}): Promise<void> {
    this.checkNotLost();
    await this.giveBack({
      write: () =>
        this.caller.write(
          this.target,
          'release',
          { fence: this.fence },
          { lease: this.lease, ...withSignal(options.signal) },
        ),
      lostCodes: ['LOCK_NOT_HELD', 'SESSION_EXPIRED'],
      lostMessage: (error) =>
        `lock ${JSON.stringify(this.name)} (fence ${this.fence}) was lost: ${error.message}`,
      whenLost: 'throw',
    });
  }

  /** Releases the lock, unless it was lost already (then there is nothing to release). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.held) await this.release();
  }
}

/** True when `error` is the firing of `timeout` (not the caller's abort, not a failure). */
export function timedOut(error: unknown, timeout: AbortSignal | undefined): boolean {
  return timeout?.aborted === true && error === timeout.reason;
}

function decodeHolder(result: unknown): LockHolder {
  const o = fields(result, 'lock holder');
  return {
    session: textOrNull(o, 'session', 'lock holder'),
    fence: integerOrNull(o, 'fence', 'lock holder'),
    waiters: texts(o, 'waiters', 'lock holder'),
  };
}
