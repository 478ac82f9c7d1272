/**
 * The primitives benchmark's etcd side, through the `etcd3` client, one client per member
 * (request N to member N mod 3, as Conclave's connection N starts at server N mod 3).
 *
 * - **Counter**: etcd has no counter, so an increment is the usual optimistic transaction:
 *   read the key, then `txn(if mod_revision == read one: put value + 1, else: get)`. When
 *   another increment won, the else branch brings the new value and revision in the same
 *   round trip and the transaction is tried again (counted in `conflicts`).
 * - **Lock**: `etcd3`'s `lock(key).acquire()`, which grants a lease, puts the key with it if
 *   absent (a transaction on create_revision == 0) and otherwise revokes the lease and
 *   fails with EtcdLockFailedError; `release()` revokes the lease. It is a try-lock: a
 *   contender that failed waits for the key's deletion (a watch opened before its first
 *   attempt, so no deletion can slip by) and tries again; every waiter wakes at every
 *   release, as with any try-lock. A 1 s re-try covers a missed event and never fires in a
 *   healthy run.
 */
import { Etcd3, EtcdLockFailedError, type Lock, type Watcher } from 'etcd3';
import type { Contender } from './lock-handoff.js';
import { type ContenderSet, counterName, type PrimitivesDriver } from './primitives-conclave.js';

/** A request not answered in this long fails the operation, not the run. */
const requestTimeoutMs = 10_000;
/** An increment that lost this many races in a row fails (a bound, not a tuning knob). */
const incrementAttemptsMax = 10_000;
/** A waiting contender tries again after this long even without a deletion event. */
const lockRetryMs = 1000;

function client(url: string): Etcd3 {
  return new Etcd3({
    hosts: url,
    dialTimeout: requestTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
  });
}

export class EtcdDriver implements PrimitivesDriver {
  private readonly clients: Etcd3[];
  /** Transactions that lost to another increment, since the last `takeConflicts()`. */
  private conflicts = 0;

  constructor(private readonly urls: readonly string[]) {
    if (urls.length === 0) throw new Error('EtcdDriver needs at least one member URL');
    this.clients = urls.map(client);
  }

  private client(sequence: number): Etcd3 {
    const c = this.clients[sequence % this.clients.length];
    if (c === undefined) throw new Error('no etcd client');
    return c;
  }

  /** The counter starts at 0, so every increment finds the key. */
  async resetCounter(): Promise<void> {
    await this.client(0).put(counterName).value('0').exec();
  }

  takeConflicts(): number {
    const n = this.conflicts;
    this.conflicts = 0;
    return n;
  }

  async increment(sequence: number): Promise<void> {
    const etcd = this.client(sequence);
    const read = await etcd.get(counterName).exec();
    let current = read.kvs[0];
    for (let attempt = 1; attempt <= incrementAttemptsMax; attempt++) {
      if (current === undefined) throw new Error(`${counterName} is missing`);
      const value = Number(current.value.toString());
      const txn = await etcd
        .if(counterName, 'Mod', '==', current.mod_revision)
        .then(etcd.put(counterName).value(String(value + 1)))
        .else(etcd.get(counterName))
        .commit();
      if (txn.succeeded) return;
      this.conflicts++;
      current = txn.responses[0]?.response_range.kvs[0];
    }
    throw new Error(`increment lost ${incrementAttemptsMax} races in a row`);
  }

  async lockCycle(lock: string): Promise<void> {
    const held = await this.client(0).lock(lock).acquire();
    await held.release();
  }

  async contenders(lock: string, count: number): Promise<ContenderSet> {
    const clients = Array.from({ length: count }, (_, i) => client(this.urls[i % this.urls.length] ?? ''));
    const watchers: Watcher[] = [];
    const contenders = await Promise.all(
      clients.map(async (etcd): Promise<Contender> => {
        let deletions = 0;
        let wake: (() => void) | null = null;
        const watcher = await etcd.watch().key(lock).create();
        watchers.push(watcher);
        watcher.on('delete', () => {
          deletions++;
          wake?.();
        });
        let held: Lock | null = null;
        return {
          acquire: async () => {
            for (;;) {
              const seen = deletions;
              try {
                held = await etcd.lock(lock).acquire();
                return;
              } catch (error) {
                if (!(error instanceof EtcdLockFailedError)) throw error;
              }
              if (deletions !== seen) continue;
              await new Promise<void>((resolve) => {
                const timer = setTimeout(done, lockRetryMs);
                function done() {
                  clearTimeout(timer);
                  wake = null;
                  resolve();
                }
                wake = done;
              });
            }
          },
          release: async () => {
            const lockHeld = held;
            held = null;
            if (lockHeld === null) throw new Error('release without a hold');
            await lockHeld.release();
          },
        };
      }),
    );
    return {
      contenders,
      close: async () => {
        await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
        for (const etcd of clients) etcd.close();
      },
    };
  }

  async close(): Promise<void> {
    for (const etcd of this.clients) etcd.close();
  }
}
