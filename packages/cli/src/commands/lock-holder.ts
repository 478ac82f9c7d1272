import { setTimeout as delay } from 'node:timers/promises';
import { type ConclaveClient, ConclaveClientError } from '@conclave/client';

/** Timings of a lock holder; all in ms. */
export interface LockTiming {
  /** The session's TTL: the lock outlives a crashed holder by at most this (times the server's multiplier). */
  readonly ttlMs: number;
  /** How often the session is renewed: well within the TTL, so one late renewal does not lose it. */
  readonly renewEveryMs: number;
  /** How long each blocking query on the lock key waits before asking again. */
  readonly waitMs: number;
  /** Pause before retrying an acquire that failed on a free key (a lock delay) or after an error. */
  readonly retryMs: number;
}

export const defaultLockTiming: LockTiming = {
  ttlMs: 15_000,
  renewEveryMs: 5_000,
  waitMs: 60_000,
  retryMs: 1_000,
};

/**
 * A session and the lock key it acquires, as `consul lock` does it: the session is renewed
 * from creation until `close()`; `acquire` waits on the key with blocking queries until it
 * is free; `watch` reports the lock lost when the key stops naming the session or the
 * session cannot be renewed. `close()` releases the key, deletes it if nobody took it, and
 * destroys the session.
 */
export class LockHolder {
  private readonly stopped = new AbortController();
  private readonly renewer: NodeJS.Timeout;
  private lastRenewedAt = Date.now();
  private lostReason: string | null = null;
  private onLost: ((reason: string) => void) | null = null;

  private constructor(
    private readonly options: {
      client: ConclaveClient;
      key: string;
      value: string;
      sessionId: string;
      timing: LockTiming;
    },
  ) {
    this.renewer = setInterval(() => void this.renew(), options.timing.renewEveryMs);
  }

  static async create(options: {
    client: ConclaveClient;
    key: string;
    value: string;
    name: string;
    timing?: LockTiming;
  }): Promise<LockHolder> {
    const timing = options.timing ?? defaultLockTiming;
    const sessionId = await options.client.sessionCreate({
      name: options.name,
      ttlSeconds: Math.ceil(timing.ttlMs / 1000),
      behavior: 'release',
    });
    return new LockHolder({
      client: options.client,
      key: options.key,
      value: options.value,
      sessionId,
      timing,
    });
  }

  get sessionId(): string {
    return this.options.sessionId;
  }

  /**
   * Resolves true once the key is ours, false if `signal` aborted first. `onWaiting` is told
   * once, the first time another session is found holding the key.
   */
  async acquire(options: { signal: AbortSignal; onWaiting: (holder: string) => void }): Promise<boolean> {
    const { client, key, value, sessionId, timing } = this.options;
    const signal = AbortSignal.any([options.signal, this.stopped.signal]);
    let told = false;
    try {
      for (;;) {
        signal.throwIfAborted();
        this.throwIfLost();
        if (await client.kvPut({ key, value, acquire: sessionId })) return true;
        const { value: entry, meta } = await client.kvGet(key, { signal });
        const holder = entry?.session ?? null;
        if (holder === sessionId) return true;
        if (holder !== null) {
          if (!told) options.onWaiting(holder);
          told = true;
          // Wait for the holder to let go: the answer comes when the key changes.
          await client.kvGet(key, { index: meta.index, waitMs: timing.waitMs, signal });
          continue;
        }
        // Free, yet not acquired: a lock delay after the last holder's session ended.
        await delay(timing.retryMs, undefined, { signal });
      }
    } catch (error) {
      if (signal.aborted) return false;
      throw error;
    }
  }

  /** From now on, call `onLost` once if the lock is lost. Ends at `close()`. */
  watch(onLost: (reason: string) => void): void {
    this.onLost = onLost;
    if (this.lostReason !== null) onLost(this.lostReason);
    else void this.monitor();
  }

  /** Stop renewing; release the key, delete it if still free, destroy the session. Never throws. */
  async close(): Promise<void> {
    this.stopped.abort();
    clearInterval(this.renewer);
    const { client, key, value, sessionId } = this.options;
    try {
      const released = await client.kvPut({ key, value, release: sessionId });
      const { value: entry } = await client.kvGet(key);
      // Leave no lock key behind, unless another holder took it meanwhile (the cas fails then).
      if (released && entry !== null && entry.session === null) {
        await client.kvDelete({ key, cas: entry.modifyIndex });
      }
    } catch (error) {
      if (!(error instanceof ConclaveClientError)) throw error;
      // Destroying the session below releases the key anyway.
    }
    try {
      await client.sessionDestroy(sessionId);
    } catch (error) {
      if (!(error instanceof ConclaveClientError)) throw error;
      // The session ends on its own when its TTL runs out.
    }
  }

  private throwIfLost(): void {
    if (this.lostReason !== null) {
      throw new ConclaveClientError({
        code: 'SESSION_NOT_FOUND',
        message: `the lock session ended: ${this.lostReason}`,
      });
    }
  }

  private lose(reason: string): void {
    if (this.lostReason !== null || this.stopped.signal.aborted) return;
    this.lostReason = reason;
    this.onLost?.(reason);
  }

  private async renew(): Promise<void> {
    const { client, sessionId, timing } = this.options;
    try {
      const session = await client.sessionRenew(sessionId);
      if (session === null) return this.lose(`session ${sessionId} no longer exists`);
      this.lastRenewedAt = Date.now();
    } catch (error) {
      if (!(error instanceof ConclaveClientError)) throw error;
      if (Date.now() - this.lastRenewedAt >= timing.ttlMs) {
        this.lose(`session ${sessionId} could not be renewed within its TTL: ${error.message}`);
      }
    }
  }

  /** Blocking queries on the key until it no longer names our session, or close(). */
  private async monitor(): Promise<void> {
    const { client, key, sessionId, timing } = this.options;
    const signal = this.stopped.signal;
    let index = 0;
    while (!signal.aborted && this.lostReason === null) {
      try {
        const { value: entry, meta } = await client.kvGet(key, { index, waitMs: timing.waitMs, signal });
        index = meta.index;
        if (entry?.session !== sessionId) {
          const now =
            entry === null
              ? 'was deleted'
              : entry.session === null
                ? 'was released'
                : `is held by ${entry.session}`;
          this.lose(`${key} ${now}`);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof ConclaveClientError)) throw error;
        // Unreachable for now: renewal decides when that means the lock is lost.
        await delay(timing.retryMs, undefined, { signal }).catch(() => undefined);
      }
    }
  }
}
