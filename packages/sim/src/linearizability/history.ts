/**
 * One client operation as the simulator saw it. Times are virtual (simulator ticks).
 * An unknown outcome (the client gave up waiting) is `output: undefined, return: Infinity`:
 * the operation may have taken effect at any time after its call, or never.
 */
export interface Operation<Input, Output> {
  readonly clientId: number;
  readonly input: Input;
  readonly call: number;
  readonly output: Output | undefined;
  readonly return: number;
}

/** True when the operation's outcome was never observed. */
export function isUnknownOutcome<I, O>(op: Operation<I, O>): boolean {
  return op.output === undefined;
}

/** Rejects histories the checker cannot interpret, so bad input never reads as a verdict. */
export function validateOperation<I, O>(op: Operation<I, O>, index: number): void {
  const where = `operation ${index} (client ${op.clientId})`;
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`${where}: call time must be finite, got ${op.call}`);
  }
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(`${where}: return time ${op.return} precedes call time ${op.call}`);
  }
  if (op.output === undefined && op.return !== Number.POSITIVE_INFINITY) {
    throw new RangeError(`${where}: an unknown outcome must have return time Infinity`);
  }
  if (op.output !== undefined && !Number.isFinite(op.return)) {
    throw new RangeError(`${where}: a known outcome needs a finite return time`);
  }
}

export interface HistoryRecorderOptions {
  /** Refuse to grow past this many operations, so a runaway simulation cannot exhaust memory. */
  readonly operationsMax?: number;
}

interface PendingRecord<Input, Output> {
  clientId: number;
  input: Input;
  call: number;
  state: 'pending' | 'completed' | 'abandoned';
  output: Output | undefined;
  return: number;
}

const OPERATIONS_MAX_DEFAULT = 1_000_000;

/**
 * Records invocations and completions as the simulator produces them. Operations still
 * pending when `operations()` is called are reported as unknown outcomes, because the
 * cluster may yet apply them.
 */
export class HistoryRecorder<Input, Output> {
  readonly #records: PendingRecord<Input, Output>[] = [];
  readonly #operationsMax: number;

  constructor(options: HistoryRecorderOptions = {}) {
    const max = options.operationsMax ?? OPERATIONS_MAX_DEFAULT;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`operationsMax must be a positive integer, got ${max}`);
    }
    this.#operationsMax = max;
  }

  /** Records a call and returns the id to complete or abandon it with. */
  invoke(clientId: number, input: Input, time: number): number {
    if (this.#records.length >= this.#operationsMax) {
      throw new RangeError(`history holds operationsMax (${this.#operationsMax}) operations`);
    }
    if (!Number.isFinite(time)) throw new RangeError(`call time must be finite, got ${time}`);
    const record: PendingRecord<Input, Output> = {
      clientId,
      input,
      call: time,
      state: 'pending',
      output: undefined,
      return: Number.POSITIVE_INFINITY,
    };
    this.#records.push(record);
    return this.#records.length - 1;
  }

  /** Records the observed output. */
  complete(opId: number, output: Output, time: number): void {
    const record = this.#pending(opId);
    if (!Number.isFinite(time) || time < record.call) {
      throw new RangeError(`op ${opId}: return time ${time} precedes call time ${record.call}`);
    }
    record.state = 'completed';
    record.output = output;
    record.return = time;
  }

  /** The client gave up: the operation may or may not have taken effect. */
  abandon(opId: number): void {
    this.#pending(opId).state = 'abandoned';
  }

  /** A snapshot of the history in invocation order. */
  operations(): Operation<Input, Output>[] {
    return this.#records.map((r) => ({
      clientId: r.clientId,
      input: r.input,
      call: r.call,
      output: r.output,
      return: r.return,
    }));
  }

  #pending(opId: number): PendingRecord<Input, Output> {
    const record = this.#records[opId];
    if (record === undefined) throw new RangeError(`unknown op id ${opId}`);
    if (record.state !== 'pending') throw new Error(`op ${opId} is already ${record.state}`);
    return record;
  }
}
