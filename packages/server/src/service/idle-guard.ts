import { Readable } from 'node:stream';

/**
 * `source`'s bytes, failing with `idleError()` once `idleMs` pass while the consumer waits
 * for bytes and `source` has none. Only starved time counts: while the consumer is busy
 * (a restore awaiting Raft), `source` fills up and the clock is stopped, so a slow cluster
 * never times out a healthy upload; a sender that stops does. Failing does not destroy
 * `source` (its owner may still answer on the same connection); it is released unread.
 */
export function idleGuarded(options: { source: Readable; idleMs: number; idleError: () => Error }): Readable {
  return new IdleGuarded(options);
}

class IdleGuarded extends Readable {
  private readonly source: Readable;
  private readonly idleMs: number;
  private readonly idleError: () => Error;
  private timer: NodeJS.Timeout | null = null;
  /** The consumer asked for bytes and has not been given as many as it can hold since. */
  private wanting = false;

  constructor(options: { source: Readable; idleMs: number; idleError: () => Error }) {
    super();
    this.source = options.source;
    this.idleMs = options.idleMs;
    this.idleError = options.idleError;
    this.source.on('readable', this.onReadable);
    this.source.on('end', this.onEnd);
    this.source.on('error', this.onError);
  }

  override _read(): void {
    this.wanting = true;
    this.pull();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.disarm();
    this.release();
    callback(error);
  }

  private readonly onReadable = (): void => {
    if (this.wanting) this.pull();
  };

  private readonly onEnd = (): void => {
    this.disarm();
    this.release();
    this.push(null);
  };

  private readonly onError = (error: Error): void => {
    this.destroy(error);
  };

  private pull(): void {
    for (;;) {
      const chunk: Buffer | null = this.source.read();
      if (chunk === null) {
        // Starved: the sender has room to send and sends nothing. 'end' disarms.
        this.arm();
        return;
      }
      this.disarm();
      if (!this.push(chunk)) {
        this.wanting = false;
        return;
      }
    }
  }

  private arm(): void {
    if (this.timer !== null || this.destroyed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.destroy(this.idleError());
    }, this.idleMs);
    // A stalled upload must not keep a stopping server alive.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Without our 'readable' listener, the owner can resume `source` to drain it. The 'error'
   * listener stays: a later error of `source` must not go unhandled (destroy is then a no-op).
   */
  private release(): void {
    this.source.off('readable', this.onReadable);
    this.source.off('end', this.onEnd);
  }
}
