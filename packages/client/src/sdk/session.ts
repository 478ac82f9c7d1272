import { EventEmitter, setMaxListeners } from 'node:events';
import type { ConclaveClient } from '../client.js';
import { ConclaveClientError } from '../errors.js';
import { abortable } from './abort.js';

/** What a ConclaveSession tells its listeners. */
export interface SessionEvents {
  /** A session was opened: the first call that needed one, or the first after a loss. */
  open: [id: string];
  /**
   * The session ended under the SDK (the server expired or destroyed it, or it could not
   * be renewed within its TTL): what it held is gone, and every lock, candidacy and permit
   * bound to it is lost. The error's code is SESSION_EXPIRED. The next call that needs a
   * session opens a new one.
   */
  lost: [error: ConclaveClientError];
}

/**
 * One server session as the SDK holds it: its id, the sequence numbers of its writes, and
 * a signal that aborts (with the reason) when the session ends for the SDK.
 */
export class Lease {
  private seq = 0;
  private readonly controller = new AbortController();
  /** When the last renewal that succeeded was sent (or the session was created), ms. */
  renewedAtMs: number;

  /** @internal Made by ConclaveSession. */
  constructor(
    readonly id: string,
    options: { nowMs: number },
  ) {
    this.renewedAtMs = options.nowMs;
    // Every hold and every wait of the session listens here: many are no leak.
    setMaxListeners(0, this.controller.signal);
  }

  /** The seq of the session's next write: 1, 2, ... (the server answers a repeated seq once). */
  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  /** Aborts when the session ends for the SDK; the reason is the error to report. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  end(reason: ConclaveClientError): void {
    if (!this.ended) this.controller.abort(reason);
  }

  /** Throws why the session ended, if it has. */
  check(): void {
    this.controller.signal.throwIfAborted();
  }
}

export interface SessionSettings {
  readonly ttlMs: number;
  readonly name: string;
}

/**
 * The one session of a Conclave connection. It opens lazily, on the first call that needs
 * it, and is renewed every TTL/3 from then on. Locks, candidacies, permits and ephemeral
 * entries are bound to it, and writes take their exactly-once sequence numbers from it.
 */
export class ConclaveSession extends EventEmitter<SessionEvents> {
  private current: Lease | null = null;
  private opening: Promise<Lease> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private isClosed = false;
  private readonly closing = new AbortController();

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly client: ConclaveClient,
    private readonly settings: SessionSettings,
  ) {
    super();
  }

  /** The id of the session open now; null before the first one and after a loss. */
  get id(): string | null {
    return this.current?.id ?? null;
  }

  /** True once the connection was closed: no session opens any more. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** The session open now, or null: reads that may name a session never open one. */
  peek(): Lease | null {
    return this.current;
  }

  /**
   * The session open now, opened first if there is none. Callers sharing an opening wait
   * for the same one; aborting `signal` ends this wait, not the opening.
   */
  async lease(signal?: AbortSignal): Promise<Lease> {
    if (this.isClosed) throw closedError();
    if (this.current !== null) return this.current;
    if (this.opening === null) {
      this.opening = this.open().finally(() => {
        this.opening = null;
      });
    }
    return abortable(this.opening, signal);
  }

  private async open(): Promise<Lease> {
    const sentAtMs = Date.now();
    const id = await this.client.sessionCreate({
      name: this.settings.name,
      ttlSeconds: Math.ceil(this.settings.ttlMs / 1000),
      // Primitives give up a gone session's holds either way; KV locks it held are kept.
      behavior: 'release',
      signal: this.closing.signal,
    });
    if (this.isClosed) {
      await this.destroy(id);
      throw closedError();
    }
    const lease = new Lease(id, { nowMs: sentAtMs });
    this.current = lease;
    this.schedule(lease);
    this.emit('open', id);
    return lease;
  }

  /**
   * Ends `lease` for the SDK (a renewal found it gone, or a call was answered
   * SESSION_EXPIRED): its holds are lost, and the next call opens a new session.
   */
  lost(lease: Lease, error: ConclaveClientError): void {
    if (lease.ended) return;
    lease.end(error);
    if (this.current === lease) {
      this.current = null;
      this.stopTimer();
    }
    this.emit('lost', error);
  }

  /**
   * Gives the session up because it may hold something the SDK cannot account for (a
   * grant whose answer never came): ends it as `lost` does, and destroys it on the server,
   * which releases whatever it holds.
   */
  abandon(lease: Lease, error: ConclaveClientError): void {
    this.lost(lease, error);
    void this.destroy(lease.id);
  }

  private schedule(lease: Lease): void {
    this.stopTimer();
    this.timer = setTimeout(() => void this.renew(lease), Math.floor(this.settings.ttlMs / 3));
    // A forgotten connection must not keep the process alive: the server expires the session.
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async renew(lease: Lease): Promise<void> {
    if (this.isClosed || this.current !== lease) return;
    const sentAtMs = Date.now();
    try {
      const info = await this.client.sessionRenew(lease.id, { signal: this.closing.signal });
      if (info === null) {
        this.lost(
          lease,
          expired(`session ${lease.id} expired or was destroyed: the server no longer knows it`),
        );
        return;
      }
      lease.renewedAtMs = sentAtMs;
    } catch (error) {
      if (this.isClosed) return;
      // The server keeps a session for 2×TTL after its last renewal. Past one TTL without
      // one, the SDK stops trusting it (a lock-holder must stop before another can take
      // over) and destroys it, so that what it holds passes on at once, not at 2×TTL.
      if (Date.now() - lease.renewedAtMs >= this.settings.ttlMs) {
        const reason = error instanceof Error ? error.message : String(error);
        this.abandon(lease, expired(`session ${lease.id} could not be renewed within its TTL: ${reason}`));
        return;
      }
    }
    if (!this.isClosed && this.current === lease) this.schedule(lease);
  }

  /**
   * Stops renewing and destroys the session, which releases its locks, permits,
   * candidacies and ephemeral entries at once. Handles bound to it end.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.stopTimer();
    this.closing.abort(closedError());
    const lease = this.current;
    this.current = null;
    if (lease === null) return;
    lease.end(closedError());
    await this.destroy(lease.id);
  }

  /** Best effort: a session not destroyed expires at its TTL anyway. */
  private async destroy(id: string): Promise<void> {
    try {
      await this.client.sessionDestroy(id);
    } catch {
      // The server expires it after 2×TTL; nothing else to do.
    }
  }
}

export function expired(message: string): ConclaveClientError {
  return new ConclaveClientError({ code: 'SESSION_EXPIRED', message });
}

export function closedError(): ConclaveClientError {
  return new ConclaveClientError({ code: 'USAGE', message: 'this Conclave connection was closed' });
}
