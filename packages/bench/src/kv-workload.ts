/**
 * The HTTP benchmark's workload, independent of the system under test: fixed-size values
 * over a fixed key space, requests spread round robin over the servers, four kinds of
 * request (a put and three read consistencies), each at several concurrencies.
 */
import { type ClosedLoopResult, runClosedLoop } from './closed-loop.js';

/** How a read is served: Consul's default (leader lease), `?consistent`, `?stale`. */
export type ReadConsistency = 'default' | 'consistent' | 'stale';

/** One system under test, reached through its client API. A request that fails throws. */
export interface KvTarget {
  readonly serverCount: number;
  put(request: { server: number; key: string; value: Uint8Array }): Promise<void>;
  /** Reads a key that must exist: a missing key is an error. */
  get(request: { server: number; key: string; consistency: ReadConsistency }): Promise<void>;
  close(): Promise<void>;
}

export type KvOp = 'put' | 'get-default' | 'get-consistent' | 'get-stale';
export const kvOps: readonly KvOp[] = ['put', 'get-default', 'get-consistent', 'get-stale'];

export interface Workload {
  readonly keyCount: number;
  readonly valueBytes: number;
}

export const defaultWorkload: Workload = { keyCount: 10_000, valueBytes: 256 };

const keyDigits = 6;
const keyCountMax = 10 ** keyDigits;
const valueBytesMax = 64 * 1024;

export function validateWorkload(workload: Workload): void {
  const { keyCount, valueBytes } = workload;
  if (!Number.isInteger(keyCount) || keyCount < 1 || keyCount > keyCountMax) {
    throw new Error(`keyCount must be an integer in [1, ${keyCountMax}], got ${keyCount}`);
  }
  if (!Number.isInteger(valueBytes) || valueBytes < 0 || valueBytes > valueBytesMax) {
    throw new Error(`valueBytes must be an integer in [0, ${valueBytesMax}], got ${valueBytes}`);
  }
}

/** The key of request `sequence`: consecutive requests walk the key space, so every group is hit. */
export function keyOf(sequence: number, keyCount: number): string {
  return `bench-${String(sequence % keyCount).padStart(keyDigits, '0')}`;
}

/** Which server serves request `sequence`: round robin, so each server gets a third of the load. */
export function serverOf(sequence: number, serverCount: number): number {
  return sequence % serverCount;
}

/** A value that differs per sequence number, so a put is never a no-op rewrite of equal bytes. */
export function valueFor(sequence: number, valueBytes: number): Uint8Array {
  const value = new Uint8Array(valueBytes);
  value.fill(97 + (sequence % 26));
  return value;
}

const consistencyOf: Readonly<Record<Exclude<KvOp, 'put'>, ReadConsistency>> = {
  'get-default': 'default',
  'get-consistent': 'consistent',
  'get-stale': 'stale',
};

/** The request function for one op, as the closed loop calls it. */
export function operationOf(options: {
  target: KvTarget;
  op: KvOp;
  workload: Workload;
}): (sequence: number) => Promise<void> {
  const { target, op, workload } = options;
  const server = (sequence: number) => serverOf(sequence, target.serverCount);
  const key = (sequence: number) => keyOf(sequence, workload.keyCount);
  if (op === 'put') {
    // A few distinct values, built once: allocating per request would be measured too.
    const values = Array.from({ length: 26 }, (_, i) => valueFor(i, workload.valueBytes));
    return (sequence) =>
      target.put({
        server: server(sequence),
        key: key(sequence),
        value: values[sequence % values.length] ?? new Uint8Array(workload.valueBytes),
      });
  }
  const consistency = consistencyOf[op];
  return (sequence) => target.get({ server: server(sequence), key: key(sequence), consistency });
}

export interface CellOptions {
  readonly target: KvTarget;
  readonly op: KvOp;
  readonly inFlight: number;
  readonly workload: Workload;
  /** Untimed requests first, so connections are open and the JIT has settled. */
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly opsMax: number;
}

/** One cell of the table: one op at one concurrency, after a warm-up. */
export async function runCell(options: CellOptions): Promise<ClosedLoopResult> {
  const operation = operationOf(options);
  const { inFlight, opsMax } = options;
  if (options.warmupMs > 0)
    await runClosedLoop({ inFlight, opsMax, durationMs: options.warmupMs, operation });
  return runClosedLoop({ inFlight, opsMax, durationMs: options.durationMs, operation });
}

/** Attempts per key when preloading: a leader moving meanwhile may refuse a write or two. */
const preloadAttemptsMax = 5;
const preloadRetryDelayMs = 100;

/** Write every key once, so every read finds its key. Throws if a key cannot be written. */
export async function preload(options: {
  target: KvTarget;
  workload: Workload;
  inFlight: number;
  /** The wait before retry n is n times this. */
  retryDelayMs?: number;
}): Promise<void> {
  const { target, workload } = options;
  const retryDelayMs = options.retryDelayMs ?? preloadRetryDelayMs;
  let next = 0;
  const writeOne = async (sequence: number): Promise<void> => {
    const request = {
      server: serverOf(sequence, target.serverCount),
      key: keyOf(sequence, workload.keyCount),
      value: valueFor(sequence, workload.valueBytes),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        return await target.put(request);
      } catch (error) {
        if (attempt >= preloadAttemptsMax) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`preloading ${request.key} failed ${attempt} times: ${reason}`);
        }
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * attempt));
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (next < workload.keyCount) await writeOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(options.inFlight, workload.keyCount) }, worker));
}
