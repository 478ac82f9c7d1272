/**
 * Turns within this process: one holder at a time, the others first come, first served.
 * The server grants locks and permits per session, and one connection has one session, so
 * without this two callers of one connection would both "hold" the same lock.
 */
export class LocalTurns {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  /** `onIdle` runs when the turn is free and nobody waits (the owner may forget it then). */
  constructor(private readonly onIdle: () => void = () => undefined) {}

  /** Free, and nobody waits. */
  get idle(): boolean {
    return !this.held && this.waiting.length === 0;
  }

  /** Waits for the turn; resolves with the function that passes it on (call it once). */
  async take(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (!this.held) {
      this.held = true;
      return this.passer();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.passer());
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        if (this.idle) this.onIdle();
        reject(signal?.reason);
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The turn if it is free now, else null. */
  tryTake(): (() => void) | null {
    if (this.held) return null;
    this.held = true;
    return this.passer();
  }

  private passer(): () => void {
    let passed = false;
    return () => {
      if (passed) return;
      passed = true;
      const next = this.waiting.shift();
      if (next !== undefined) {
        next();
        return;
      }
      this.held = false;
      this.onIdle();
    };
  }
}
