import { EventEmitter } from 'node:events';
import type { ErrorCode } from '@conclave/protocol';
import { ConclaveClientError } from '../errors.js';
import { isCode } from './caller.js';
import type { Lease } from './session.js';

/** What a hold (a lock, permits, a candidacy) tells its listeners. */
export interface HoldEvents {
  /** The hold is gone without release: its session ended. Emitted once. */
  lost: [error: ConclaveClientError];
}

/**
 * Something the connection's session holds on the server: a lock, permits, a candidacy.
 * It is lost when that session ends (expired, destroyed, or the connection closed), as the
 * server gives up everything a gone session held; `signal` aborts then, or on release, so
 * work guarded by the hold can stop.
 */
export abstract class Hold extends EventEmitter<HoldEvents> {
  private state: 'held' | 'released' | 'lost' = 'held';
  private lostError: ConclaveClientError | null = null;
  private readonly controller = new AbortController();
  private readonly onLeaseEnd: () => void;

  protected constructor(
    protected readonly lease: Lease,
    private readonly options: { lostCode: ErrorCode; what: string; onEnd: () => void },
  ) {
    super();
    this.onLeaseEnd = () => {
      const reason = lease.signal.reason;
      const why = reason instanceof Error ? reason.message : String(reason);
      this.lose(`${options.what} was lost with its session: ${why}`);
    };
    if (lease.ended) this.onLeaseEnd();
    else lease.signal.addEventListener('abort', this.onLeaseEnd, { once: true });
  }

  /** The session whose hold this is. */
  get session(): string {
    return this.lease.id;
  }

  /** True once the hold is gone without release (its session ended). */
  get lost(): boolean {
    return this.state === 'lost';
  }

  /** True until released or lost. */
  get held(): boolean {
    return this.state === 'held';
  }

  /** Aborts when the hold ends, released or lost (the reason says which). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Throws the loss (lostCode) if the hold was lost. */
  protected checkNotLost(): void {
    if (this.lostError !== null) throw this.lostError;
  }

  /** Marks the hold lost (once), tells the listeners, and returns the error to throw. */
  protected lose(message: string): ConclaveClientError {
    if (this.lostError !== null) return this.lostError;
    const error = new ConclaveClientError({ code: this.options.lostCode, message });
    this.lostError = error;
    if (this.state === 'held') {
      this.state = 'lost';
      this.end(error);
      this.emit('lost', error);
    }
    return error;
  }

  /**
   * Gives the hold back with `write` (a release, a withdraw), once: a no-op unless held.
   * A refusal with one of `lostCodes` means the server no longer counts it as held: the
   * hold is marked lost, and the loss thrown (`whenLost: 'throw'`) or not (`'return'`).
   */
  protected async giveBack(options: {
    write: () => Promise<unknown>;
    lostCodes: readonly ErrorCode[];
    lostMessage: (error: Error) => string;
    whenLost: 'throw' | 'return';
  }): Promise<void> {
    if (!this.held) return;
    try {
      await options.write();
    } catch (error) {
      if (!options.lostCodes.some((code) => isCode(error, code))) throw error;
      const loss = this.lose(options.lostMessage(error as Error));
      if (options.whenLost === 'throw') throw loss;
      return;
    }
    this.released();
  }

  /** Marks the hold released. */
  protected released(): void {
    if (this.state !== 'held') return;
    this.state = 'released';
    this.end(new ConclaveClientError({ code: 'USAGE', message: `${this.options.what} was released` }));
  }

  private end(reason: ConclaveClientError): void {
    this.lease.signal.removeEventListener('abort', this.onLeaseEnd);
    this.controller.abort(reason);
    this.options.onEnd();
  }
}
