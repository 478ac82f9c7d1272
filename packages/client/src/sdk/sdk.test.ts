/**
 * The SDK against a real cluster: three `conclave agent` processes (the built dist) on
 * loopback, started once for the file. Every wait is event-driven or a bounded pollUntil.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { assertBuilt, ProcessCluster, pollUntil } from '@conclave/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConclaveClient } from '../client.js';
import { ConclaveClientError } from '../errors.js';
import { ReplyDroppingProxy } from '../testing/reply-dropping-proxy.js';
import { type Conclave, type ConnectOptions, connect } from './connect.js';
import type { LockHandle } from './lock.js';

let cluster: ProcessCluster;
let urls: string[];
let admin: ConclaveClient;
const connections: Conclave[] = [];

/** A connection closed after the file (closing twice is harmless). */
function open(options: Partial<ConnectOptions> = {}): Conclave {
  const cv = connect({ servers: urls, sessionTtlMs: 10_000, ...options });
  connections.push(cv);
  return cv;
}

/** The error a promise rejects with (failing if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<ConclaveClientError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ConclaveClientError);
  return outcome.error as ConclaveClientError;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const poll = { intervalMs: 20, timeoutMs: 10_000 } as const;

beforeAll(async () => {
  assertBuilt();
  cluster = await ProcessCluster.create({ size: 3, groups: 4, tickMs: 10 });
  await cluster.startAll();
  await pollUntil(() => cluster.agreedLeaders(), {
    ...poll,
    timeoutMs: 30_000,
    what: 'a leader for every group',
  });
  urls = cluster.servers.map((server) => server.url);
  admin = new ConclaveClient({ addresses: urls });
}, 60_000);

afterEach((context) => {
  if (context.task.result?.state === 'fail') {
    for (const server of cluster.servers) {
      process.stderr.write(`---- ${server.nodeId} ----\n${server.output.slice(-3000)}\n`);
    }
  }
});

afterAll(async () => {
  try {
    await Promise.all(connections.map((cv) => cv.close()));
    await admin?.close();
  } finally {
    // Whatever failed above, no server outlives the file.
    await cluster?.destroy();
  }
  expect(cluster?.liveChildren() ?? []).toEqual([]);
});

describe('counter and value', () => {
  it('counts, sets and compares-and-sets a counter', async () => {
    const cv = open();
    const counter = cv.counter('c/basic');
    const opened: string[] = [];
    cv.session.on('open', (id) => opened.push(id));
    expect(await counter.get()).toBe(0);
    // Reads need no session; the first write opens it.
    expect(cv.session.id).toBeNull();
    expect(await counter.increment()).toBe(1);
    expect(opened).toEqual([cv.session.id]);
    expect(await counter.increment(5)).toBe(6);
    expect(await counter.decrement(2)).toBe(4);
    await counter.set(10);
    expect(await counter.compareAndSet(10, 11)).toBe(true);
    expect(await counter.compareAndSet(10, 12)).toBe(false);
    expect(await counter.get({ consistency: 'consistent' })).toBe(11);
    await counter.set(Number.MAX_SAFE_INTEGER);
    expect((await rejection(counter.increment())).code).toBe('COUNTER_OVERFLOW');
    expect(await counter.get()).toBe(Number.MAX_SAFE_INTEGER);
    await cv.close();
    expect((await rejection(counter.get())).code).toBe('USAGE');
    expect((await rejection(counter.increment())).code).toBe('USAGE');
  });

  it('keeps a typed value with versions, conditional writes, deletes and a watch', async () => {
    const value = open().value<{ n: number }>('v/basic');
    expect(await value.get()).toBeNull();
    const first = await value.set({ n: 1 });
    expect(first.previous).toBeNull();
    expect(await value.get()).toEqual({ value: { n: 1 }, version: first.version });
    expect(await value.compareAndSet({ n: 2 }, first.version + 1000)).toBe(false);
    expect(await value.compareAndSet({ n: 2 }, first.version)).toBe(true);
    expect((await rejection(value.set({ n: 3 }, { ifVersion: first.version }))).code).toBe(
      'VERSION_MISMATCH',
    );

    const stop = new AbortController();
    const seen: ({ n: number } | null)[] = [];
    const watching = (async () => {
      for await (const current of value.watch({ signal: stop.signal })) {
        seen.push(current?.value ?? null);
        if (seen.length === 1) await value.set({ n: 4 });
        if (seen.length === 2) await value.delete();
        if (seen.length === 3) stop.abort();
      }
    })();
    await watching;
    expect(seen).toEqual([{ n: 2 }, { n: 4 }, null]);
    expect(await value.get()).toBeNull();
    expect(await value.delete()).toBe(false);
    // A codec of its own: text as it is.
    const text = open().value('v/text', {
      codec: { encode: (s: string) => Buffer.from(s), decode: (b) => Buffer.from(b).toString() },
    });
    await text.set('plain');
    expect((await text.get())?.value).toBe('plain');
  });
});

describe('map and set', () => {
  it('puts, inserts, updates, removes and pages through a map spread over the groups', async () => {
    const map = open().map<number>('jobs/nightly?#%');
    const keys = Array.from({ length: 25 }, (_, i) => `k${i}`);
    for (const [i, key] of keys.entries()) await map.put(key, i);
    expect(await map.size()).toBe(keys.length);
    const entries = await collect(map.entries({ pageSize: 4 }));
    expect(entries.map((e) => e.key).sort()).toEqual([...keys].sort());
    for (const entry of entries) expect(entry.value).toBe(keys.indexOf(entry.key));

    const k0 = await map.get('k0');
    expect(k0?.value).toBe(0);
    expect(await map.insert('k0', 100)).toBeNull();
    expect(await map.insert('new', 7)).toBeGreaterThan(0);
    expect(await map.update('absent', 1)).toBeNull();
    const updated = await map.update('k0', 50);
    expect(updated?.previous).toEqual(k0);
    expect((await rejection(map.put('k0', 51, { ifVersion: k0?.version ?? 0 }))).code).toBe(
      'VERSION_MISMATCH',
    );
    expect((await map.remove('k0'))?.value).toBe(50);
    expect(await map.remove('k0')).toBeNull();
    expect(await map.clear()).toBe(keys.length); // 24 left of the 25, and 'new'
    expect(await map.size()).toBe(0);
    expect(await collect(map.entries())).toEqual([]);
  });

  it('adds, finds, lists and removes set elements', async () => {
    const set = open().set('members');
    expect(await set.add('a')).toBe(true);
    expect(await set.add('a')).toBe(false);
    expect(await set.add('b')).toBe(true);
    expect(await set.add('c')).toBe(true);
    expect(await set.contains('a')).toBe(true);
    expect(await set.contains('z')).toBe(false);
    expect(await set.remove('a')).toBe(true);
    expect(await set.remove('a')).toBe(false);
    expect(await set.size()).toBe(2);
    expect((await collect(set.elements({ pageSize: 1 }))).sort()).toEqual(['b', 'c']);
    expect(await set.clear()).toBe(2);
    expect(await set.size()).toBe(0);
    // An element with a time to live goes by itself (the leader checks once a second).
    expect(await set.add('brief', { ttlMs: 1000 })).toBe(true);
    await pollUntil(async () => ((await set.contains('brief')) ? undefined : true), {
      ...poll,
      what: 'the element past its TTL gone',
    });
  });

  it('drops ephemeral entries when their connection closes (its session is destroyed)', async () => {
    const owner = open();
    const keeper = open();
    await owner.map('eph').put('mine', 1, { ephemeral: true });
    await owner.set('eph').add('me', { ephemeral: true });
    await keeper.map('eph').put('kept', 2);
    expect(await keeper.map('eph').size()).toBe(2);
    await owner.close();
    expect(await keeper.map('eph').get('mine')).toBeNull();
    expect(await keeper.set('eph').contains('me')).toBe(false);
    expect((await keeper.map('eph').get('kept'))?.value).toBe(2);
    // A write without a session cannot be ephemeral.
    expect((await rejection(keeper.map('eph').put('x', 1, { ephemeral: true, session: false }))).code).toBe(
      'USAGE',
    );
  });
});

describe('lock', () => {
  it('hands off first come, first served between connections, with growing fences', async () => {
    const [a, b, c] = [open(), open(), open()];
    const first = await a.lock('fifo').acquire();
    const order: string[] = [];
    const waiting = (cv: Conclave, who: string) =>
      cv
        .lock('fifo')
        .acquire()
        .then((handle) => {
          order.push(who);
          return handle;
        });
    const bGets = waiting(b, 'b');
    await pollUntil(async () => ((await a.lock('fifo').holder()).waiters.length === 1 ? true : undefined), {
      ...poll,
      what: 'b in line',
    });
    const cGets = waiting(c, 'c');
    await pollUntil(async () => ((await a.lock('fifo').holder()).waiters.length === 2 ? true : undefined), {
      ...poll,
      what: 'c in line after b',
    });
    expect((await a.lock('fifo').holder()).waiters).toEqual([b.session.id, c.session.id]);
    await first.release();
    const second = await bGets;
    expect(second.fence).toBeGreaterThan(first.fence);
    expect(order).toEqual(['b']);
    await second.release();
    const third = await cGets;
    expect(third.fence).toBeGreaterThan(second.fence);
    expect(order).toEqual(['b', 'c']);
    expect(await a.lock('fifo').holder()).toEqual({ session: c.session.id, fence: third.fence, waiters: [] });
    await third.release();
    await third.release(); // twice: a no-op
    expect((await a.lock('fifo').holder()).session).toBeNull();
  });

  it('excludes callers of one connection too, and gives up at a timeout leaving the line', async () => {
    const [a, b] = [open(), open()];
    const held = await a.lock('local').acquire();
    expect(await a.lock('local').tryAcquire()).toBeNull();
    expect(await b.lock('local').tryAcquire()).toBeNull();
    let secondHeld = false;
    const second = a
      .lock('local')
      .acquire()
      .then((handle) => {
        secondHeld = true;
        return handle;
      });
    // The other connection times out, and leaves no place in line behind.
    expect(await b.lock('local').acquire({ timeoutMs: 300 })).toBeNull();
    expect((await b.lock('local').holder()).waiters).toEqual([]);
    expect(secondHeld).toBe(false);
    await held.release();
    const next = await second;
    expect(next.fence).toBeGreaterThanOrEqual(held.fence);
    await next.release();
    // An abort while waiting rejects with the signal's reason.
    const blocker = await b.lock('local').acquire();
    const stop = new AbortController();
    const aborted = a.lock('local').acquire({ signal: stop.signal });
    await pollUntil(async () => ((await b.lock('local').holder()).waiters.length === 1 ? true : undefined), {
      ...poll,
      what: 'a in line',
    });
    stop.abort(new Error('no longer needed'));
    await expect(aborted).rejects.toThrow('no longer needed');
    expect((await b.lock('local').holder()).waiters).toEqual([]);
    await blocker.release();
  });

  it('is lost with its session: destroyed over HTTP, the handle learns it and release throws LOCK_LOST', async () => {
    const cv = open();
    const handle: LockHandle = await cv.lock('doomed').acquire();
    const oldSession = cv.session.id;
    expect(oldSession).not.toBeNull();
    const lost = once(handle, 'lost', { signal: AbortSignal.timeout(15_000) });
    const sessionLost = once(cv.session, 'lost', { signal: AbortSignal.timeout(15_000) });
    expect(await admin.sessionDestroy(oldSession ?? '')).toBe(true);
    const [error] = (await lost) as [ConclaveClientError];
    expect(error.code).toBe('LOCK_LOST');
    expect(((await sessionLost) as [ConclaveClientError])[0].code).toBe('SESSION_EXPIRED');
    expect(handle.lost).toBe(true);
    expect(handle.signal.aborted).toBe(true);
    expect((await rejection(handle.release())).code).toBe('LOCK_LOST');
    // The next call opens a new session, and the lock is free for it.
    const again = await cv.lock('doomed').acquire();
    expect(cv.session.id).not.toBe(oldSession);
    expect(again.fence).toBeGreaterThan(handle.fence);
    await again.release();
  });

  it('releases at the end of an `await using` block', async () => {
    const cv = open();
    {
      await using handle = await cv.lock('scoped').acquire();
      expect((await cv.lock('scoped').holder()).fence).toBe(handle.fence);
    }
    expect((await cv.lock('scoped').holder()).session).toBeNull();
  });
});

describe('election and semaphore', () => {
  it('elects the first candidate, follows changes with watch, and moves on when the leader withdraws', async () => {
    const [a, b] = [open(), open()];
    const alice = await a.election('e').enter('alice');
    const bob = await b.election('e').enter('bob');
    expect(await alice.isLeader()).toBe(true);
    expect(await bob.isLeader()).toBe(false);
    const start = await b.election('e').term();
    expect(start).toMatchObject({ leader: 'alice', candidates: ['alice', 'bob'] });
    expect((await rejection(b.election('e').enter('alice'))).code).toBe('CANDIDATE_EXISTS');

    const stop = new AbortController();
    const leaders: (string | null)[] = [];
    const watched = (async () => {
      for await (const term of b.election('e').watch({ signal: stop.signal })) {
        leaders.push(term.leader);
        if (term.leader === 'bob') stop.abort();
      }
    })();
    // The watch's first state is the election as it is when the watch begins: wait for it.
    await pollUntil(async () => (leaders.length > 0 ? true : undefined), { ...poll, what: 'the first term' });
    await alice.withdraw();
    await watched;
    expect(leaders.at(0)).toBe('alice');
    expect(leaders.at(-1)).toBe('bob');
    const after = await bob.term();
    expect(after.term).toBeGreaterThan(start.term);
    expect(await bob.isLeader()).toBe(true);

    const carol = await a.election('e').enter('carol');
    const dave = await a.election('e').enter('dave');
    expect((await a.election('e').promote('dave')).candidates).toEqual(['bob', 'dave', 'carol']);
    expect((await a.election('e').anoint('carol')).leader).toBe('carol');
    expect((await a.election('e').evict('carol')).leader).toBe('bob');
    expect((await rejection(a.election('e').anoint('nobody'))).code).toBe('NOT_A_CANDIDATE');
    await dave.withdraw();
    await carol.withdraw(); // evicted already: a no-op
    await bob.withdraw();
    expect((await a.election('e').term()).leader).toBeNull();
  });

  it('grants permits up to the count, queues the rest first come, first served', async () => {
    const [a, b, c] = [open(), open(), open()];
    const sem = a.semaphore('pool');
    await sem.setPermits(2);
    const one = await a.semaphore('pool').acquire();
    const two = await b.semaphore('pool').acquire();
    expect(await c.semaphore('pool').tryAcquire()).toBeNull();
    expect((await rejection(c.semaphore('pool').acquire({ permits: 3 }))).code).toBe('PERMITS_INVALID');
    const third = c.semaphore('pool').acquire();
    await pollUntil(async () => ((await sem.availablePermits()).waiters === 1 ? true : undefined), {
      ...poll,
      what: 'c in line',
    });
    expect(await sem.availablePermits()).toMatchObject({ available: 0, permits: 2, waiters: 1, held: 1 });
    await one.release();
    const granted = await third;
    expect(granted.permits).toBe(1);
    expect(await c.semaphore('pool').availablePermits()).toMatchObject({
      available: 0,
      held: 1,
      position: 0,
    });
    await two.release();
    expect(await a.semaphore('pool').drain()).toBe(1);
    expect(await b.semaphore('pool').acquire({ timeoutMs: 200 })).toBeNull();
    expect((await sem.availablePermits()).waiters).toBe(0);
    await a.semaphore('pool').release(1);
    await granted.release();
    expect(await sem.availablePermits()).toMatchObject({ available: 2, waiters: 0 });
  });
});

describe('retries', () => {
  it('applies a write whose answer was lost exactly once, and one without a session at most once', async () => {
    const s1 = cluster.servers[0];
    if (s1 === undefined) throw new Error('no server');
    const proxy = await ReplyDroppingProxy.start({ host: '127.0.0.1', port: s1.spec.httpPort });
    try {
      const others = urls.slice(1);
      const cv = open({ servers: [proxy.address, ...others] });
      const counter = cv.counter('c/once');
      await counter.set(100); // opens the session through the proxy
      proxy.dropReplyTo(/^POST \/v1\/primitive\/counter\/c%2Fonce\/increment /);
      // The server applies the increment, the answer never arrives, and the retry (the same
      // seq, on the next server) is answered with the first result.
      expect(await counter.increment()).toBe(101);
      expect(proxy.dropped).toBe(1);
      expect(await counter.get({ consistency: 'consistent' })).toBe(101);

      // Without a session nothing deduplicates the retry, so there is none: the outcome is
      // unknown to the caller, and the write applied once.
      const bare = open({ servers: [proxy.address, ...others] });
      proxy.dropReplyTo(/^POST \/v1\/primitive\/counter\/c%2Fonce\/increment /);
      const error = await rejection(bare.counter('c/once').increment(1, { session: false }));
      expect(error.code).toBe('CONNECTION_FAILED');
      expect(error.message).toMatch(/may or may not have been applied/);
      expect(proxy.dropped).toBe(2);
      expect(bare.session.id).toBeNull();
      expect(await counter.get({ consistency: 'consistent' })).toBe(102);
    } finally {
      await proxy.close();
    }
  });

  it('fails over when the first server listed is down', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const cv = open({ servers: [dead, ...urls] });
    expect(await cv.counter('c/failover').increment()).toBe(1);
    expect(await cv.map('failover').put('k', 'v')).toMatchObject({ previous: null });
    // A real member gone: listed first, killed, and the writes go on (a new leader where it led).
    const victim = cluster.servers[2];
    if (victim === undefined) throw new Error('no server');
    await victim.kill('SIGKILL');
    const survivor = open({ servers: [victim.url, ...urls.filter((url) => url !== victim.url)] });
    expect(await survivor.counter('c/failover').increment()).toBe(2);
    const handle = await survivor.lock('failover').acquire();
    await handle.release();
    expect(await survivor.counter('c/failover').get()).toBe(2);
  });
});
