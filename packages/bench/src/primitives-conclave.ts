/**
 * The primitives benchmark's Conclave side: everything goes through the SDK
 * (`@conclave/client`'s `connect()`) as an application would use it, exactly-once writes
 * (a session and a seq on every write) included. Each connection names all three servers,
 * starting at a different one (connection i at server i mod 3), so requests reach every
 * server and most are forwarded to the group's leader, as behind a load balancer.
 */
import { type Conclave, connect, type LockHandle } from '@conclave/client';
import type { Contender } from './lock-handoff.js';

/** Everything the bench asks of one system; etcd's side has the same shape. */
export interface PrimitivesDriver {
  /** One increment of the shared counter, on the client `sequence` picks. */
  increment(sequence: number): Promise<void>;
  /** One uncontended acquire then release of `lock`, on the first client. */
  lockCycle(lock: string): Promise<void>;
  /** `count` contenders for `lock`, each with a client (a session, a lease) of its own. */
  contenders(lock: string, count: number): Promise<ContenderSet>;
  close(): Promise<void>;
}

export interface ContenderSet {
  readonly contenders: readonly Contender[];
  close(): Promise<void>;
}

export const counterName = 'bench-counter';
const mapName = 'bench-map';

/** The servers in the order connection `i` tries them: starting at server i mod n. */
export function rotated<T>(items: readonly T[], i: number): T[] {
  const start = i % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

export class ConclaveDriver implements PrimitivesDriver {
  private readonly connections: Conclave[];

  constructor(
    private readonly urls: readonly string[],
    clients: number,
  ) {
    this.connections = Array.from({ length: clients }, (_, i) => connect({ servers: rotated(urls, i) }));
  }

  private connection(sequence: number): Conclave {
    const cv = this.connections[sequence % this.connections.length];
    if (cv === undefined) throw new Error('no connection');
    return cv;
  }

  async increment(sequence: number): Promise<void> {
    await this.connection(sequence).counter(counterName).increment();
  }

  async lockCycle(lock: string): Promise<void> {
    const held = await this.connection(0).lock(lock).acquire();
    await held.release();
  }

  async contenders(lock: string, count: number): Promise<ContenderSet> {
    const connections = Array.from({ length: count }, (_, i) => connect({ servers: rotated(this.urls, i) }));
    const contenders = connections.map((cv): Contender => {
      let held: LockHandle | null = null;
      return {
        acquire: async () => {
          held = await cv.lock(lock).acquire();
        },
        release: async () => {
          const handle = held;
          held = null;
          if (handle === null) throw new Error('release without a hold');
          await handle.release();
        },
      };
    });
    // Open every session before the clock starts: a hand-off should not include one.
    await Promise.all(connections.map((cv) => cv.session.lease()));
    return {
      contenders,
      close: async () => {
        await Promise.all(connections.map((cv) => cv.close()));
      },
    };
  }

  /** Writes keys 0 to keyCount - 1 once, so every get finds its key. */
  async preloadMap(keyCount: number, inFlight: number): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < keyCount) {
        const i = next++;
        await this.connection(i).map<string>(mapName).put(mapKey(i, keyCount), mapValue(i));
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  }

  async mapPut(sequence: number, keyCount: number): Promise<void> {
    await this.connection(sequence).map<string>(mapName).put(mapKey(sequence, keyCount), mapValue(sequence));
  }

  async mapGet(sequence: number, keyCount: number): Promise<void> {
    const key = mapKey(sequence, keyCount);
    const entry = await this.connection(sequence).map<string>(mapName).get(key);
    if (entry === null) throw new Error(`map get ${key}: absent`);
  }

  async close(): Promise<void> {
    await Promise.all(this.connections.map((cv) => cv.close()));
  }
}

export function mapKey(sequence: number, keyCount: number): string {
  return `k-${String(sequence % keyCount).padStart(6, '0')}`;
}

/** About 100 bytes of JSON: a small record, as coordination state usually is. */
function mapValue(sequence: number): string {
  return `value-${sequence}-${'x'.repeat(80)}`;
}
