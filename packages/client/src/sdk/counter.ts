import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions, WriteCallOptions } from './caller.js';
import { type EventsOptions, type StreamItem, streamOf } from './events.js';
import { boolean, fields, integer, type Versioned } from './wire.js';

/**
 * A counter: one integer within ±(2^53 - 1), 0 until first written. Every write applies
 * once (see WriteCallOptions); one that would leave the range fails with COUNTER_OVERFLOW
 * and changes nothing.
 */
export class ConclaveCounter {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
  ) {
    this.target = { kind: 'counter', name };
  }

  async get(options: ReadCallOptions = {}): Promise<number> {
    const { result } = await this.caller.read(this.target, 'get', {}, options);
    return integer(fields(result, 'counter get'), 'value', 'counter get');
  }

  async set(value: number, options: WriteCallOptions = {}): Promise<void> {
    await this.caller.write(this.target, 'set', { value }, options);
  }

  /** Adds `delta` (default 1); returns the new value. */
  async increment(delta = 1, options: WriteCallOptions = {}): Promise<number> {
    return this.add('increment', delta, options);
  }

  /** Subtracts `delta` (default 1); returns the new value. */
  async decrement(delta = 1, options: WriteCallOptions = {}): Promise<number> {
    return this.add('decrement', delta, options);
  }

  /** Sets `update` if the value is `expect`; false (nothing written) otherwise. */
  async compareAndSet(expect: number, update: number, options: WriteCallOptions = {}): Promise<boolean> {
    const { result } = await this.caller.write(this.target, 'compareAndSet', { expect, update }, options);
    return boolean(fields(result, 'counter compareAndSet'), 'ok', 'counter compareAndSet');
  }

  /**
   * The counter's changes (see StreamItem): a `reset` with the value now (unless resuming
   * `after` a version), then a `change` at every write, oldest first, each once. Ends when
   * `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<Versioned<number>>, void, undefined> {
    const decode = (wire: unknown): Versioned<number> => {
      if (wire === null) return { value: 0, version: 0 };
      const o = fields(wire, 'counter event');
      return { value: integer(o, 'value', 'counter event'), version: integer(o, 'version', 'counter event') };
    };
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'get', {}, placement);
        return { state: decode(answer.result), index: answer.index };
      },
      decode,
    });
  }

  private async add(op: 'increment' | 'decrement', delta: number, options: WriteCallOptions) {
    const { result } = await this.caller.write(this.target, op, { delta }, options);
    return integer(fields(result, `counter ${op}`), 'value', `counter ${op}`);
  }
}
