/**
 * The SDK's multimap, list, indexed map, map transactions and event streams against a real
 * cluster: three `conclave agent` processes (the built dist) on loopback, started once for
 * the file.
 */
import { assertBuilt, ProcessCluster, pollUntil } from '@conclave/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConclaveClientError } from '../errors.js';
import { type Conclave, type ConnectOptions, connect } from './connect.js';
import type { GroupStreamItem, StreamItem } from './events.js';
import { type MapChange, TransactionError } from './map.js';

let cluster: ProcessCluster;
let urls: string[];
const connections: Conclave[] = [];

function open(options: Partial<ConnectOptions> = {}): Conclave {
  const cv = connect({ servers: urls, sessionTtlMs: 10_000, ...options });
  connections.push(cv);
  return cv;
}

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

/** The first `count` items of a stream; leaving the loop closes it (its polls end). */
async function take<T>(stream: AsyncIterable<T>, count: number): Promise<T[]> {
  const taken: T[] = [];
  if (count === 0) return taken;
  for await (const item of stream) {
    taken.push(item);
    if (taken.length === count) break;
  }
  return taken;
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
  } finally {
    await cluster?.destroy();
  }
  expect(cluster?.liveChildren() ?? []).toEqual([]);
});

describe('multimap, list and indexed map', () => {
  it('keeps a set of values per key across the groups', async () => {
    const mm = open().multimap<{ id: number }>('mm/basic');
    expect(await mm.get('a')).toEqual({ values: [], version: 0 });
    expect(await mm.put('a', { id: 1 })).toBe(true);
    expect(await mm.put('a', { id: 1 })).toBe(false);
    expect(await mm.putAll('a', [{ id: 2 }, { id: 1 }, { id: 3 }])).toBe(2);
    const a = await mm.get('a');
    expect(a.values).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(a.version).toBeGreaterThan(0);
    expect(await mm.containsEntry('a', { id: 2 })).toBe(true);
    expect(await mm.containsEntry('a', { id: 9 })).toBe(false);
    expect(await mm.remove('a', { id: 2 })).toBe(true);
    expect(await mm.remove('a', { id: 2 })).toBe(false);
    expect((await rejection(mm.put('a', { id: 4 }, { ifVersion: a.version }))).code).toBe('VERSION_MISMATCH');
    for (const key of ['b', 'c', 'd', 'e', 'f']) await mm.putAll(key, [{ id: 10 }, { id: 11 }]);
    expect(await mm.size()).toBe(2 + 5 * 2);
    const entries = await collect(mm.entries({ pageSize: 2 }));
    expect(entries.map((e) => e.key).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(entries.find((e) => e.key === 'a')?.values).toEqual([{ id: 1 }, { id: 3 }]);
    expect(await mm.replace('b', [{ id: 7 }, { id: 7 }])).toEqual([{ id: 10 }, { id: 11 }]);
    expect((await mm.get('b')).values).toEqual([{ id: 7 }]);
    expect(await mm.removeAll('c')).toEqual([{ id: 10 }, { id: 11 }]);
    expect(await mm.removeAll('c')).toEqual([]);
    expect(await mm.clear()).toBe(5);
    expect(await mm.size()).toBe(0);
  });

  it('appends, inserts, reads, sets, removes and pages through a list', async () => {
    const list = open().list<string>('l/basic');
    expect(await list.size()).toBe(0);
    expect(await list.get(0)).toBeNull();
    expect((await list.append('b')).index).toBe(0);
    expect((await list.append('d')).index).toBe(1);
    const inserted = await list.insert(0, 'a');
    expect(inserted.index).toBe(0);
    await list.insert(2, 'c');
    expect(await collect(list.items())).toEqual(['a', 'b', 'c', 'd']);
    expect(await collect(list.items({ pageSize: 3 }))).toEqual(['a', 'b', 'c', 'd']);
    expect(await collect(list.items({ pageSize: 1 }))).toEqual(['a', 'b', 'c', 'd']);
    expect((await list.get(2))?.value).toBe('c');
    expect(await list.set(2, 'C')).toBe('c');
    expect(await list.remove(0)).toBe('a');
    expect(await collect(list.items())).toEqual(['b', 'C', 'd']);
    expect((await rejection(list.get(-1))).code).toBe('BAD_REQUEST');
    expect((await rejection(list.set(3, 'x'))).code).toBe('INDEX_OUT_OF_RANGE');
    expect((await rejection(list.insert(4, 'x'))).code).toBe('INDEX_OUT_OF_RANGE');
    expect((await rejection(list.append('x', { ifVersion: inserted.version }))).code).toBe(
      'VERSION_MISMATCH',
    );
    expect(await list.size()).toBe(3);
    expect(await list.clear()).toBe(3);
    expect(await collect(list.items())).toEqual([]);
  });

  it('keeps an indexed map in append order, by key and by index, with entry versions', async () => {
    const im = open().indexedMap<number>('im/basic');
    expect(await im.first()).toBeNull();
    const a = await im.append('a', 1);
    const b = await im.append('b', 2);
    const c = await im.append('c', 3);
    expect(a).toMatchObject({ key: 'a', index: 1 });
    expect(b?.index).toBe(2);
    expect(c?.index).toBe(3);
    expect(await im.append('a', 9)).toBeNull();
    expect(await im.get({ key: 'b' })).toEqual({ key: 'b', index: 2, value: 2, version: b?.version });
    expect((await im.get({ index: 3 }))?.key).toBe('c');
    expect(await im.get({ key: 'zz' })).toBeNull();
    expect((await rejection(im.update({ key: 'b' }, 20, { ifVersion: (b?.version ?? 0) + 1 }))).code).toBe(
      'VERSION_MISMATCH',
    );
    const updated = await im.update({ key: 'b' }, 20, { ifVersion: b?.version ?? 0 });
    expect(updated?.entry).toMatchObject({ key: 'b', index: 2, value: 20 });
    expect(updated?.previous.value).toBe(2);
    expect(await im.update({ index: 99 }, 0)).toBeNull();
    expect((await im.first())?.key).toBe('a');
    expect((await im.last())?.key).toBe('c');
    expect((await im.next(1))?.key).toBe('b');
    expect((await im.prev(3))?.key).toBe('b');
    expect(await im.prev(1)).toBeNull();
    expect((await rejection(im.remove({ index: 2 }, { ifVersion: b?.version ?? 0 }))).code).toBe(
      'VERSION_MISMATCH',
    );
    expect((await im.remove({ index: 2 }, { ifVersion: updated?.entry.version ?? 0 }))?.value).toBe(20);
    expect(await im.remove({ key: 'b' })).toBeNull();
    expect((await im.next(1))?.key).toBe('c');
    const d = await im.append('d', 4);
    expect(d?.index).toBe(4); // indexes are never reused
    expect(await im.size()).toBe(3);
    expect((await collect(im.entries({ pageSize: 2 }))).map((e) => [e.key, e.index])).toEqual([
      ['a', 1],
      ['c', 3],
      ['d', 4],
    ]);
    expect(await im.clear()).toBe(3);
    expect(await im.size()).toBe(0);
  });
});

describe('map transactions', () => {
  it('applies all steps or none, in one group, and names the refused step', async () => {
    const map = open().map<number>('txn');
    await map.put('{order-7}/a', 1);
    const b = await map.put('{order-7}/b', 2);
    // The second step's condition fails: the first step does not apply either.
    const refused = await rejection(
      map
        .transaction()
        .put('{order-7}/a', 10)
        .update('{order-7}/b', 20, { ifVersion: b.version + 1 })
        .commit(),
    );
    expect(refused).toBeInstanceOf(TransactionError);
    expect(refused.code).toBe('VERSION_MISMATCH');
    expect((refused as TransactionError).step).toBe(1);
    expect((await map.get('{order-7}/a'))?.value).toBe(1);
    expect((await map.get('{order-7}/b'))?.value).toBe(2);

    const done = await map
      .transaction()
      .put('{order-7}/a', 10)
      .update('{order-7}/b', 20, { ifVersion: b.version })
      .insert('{order-7}/c', 30)
      .remove('{order-7}/absent')
      .commit();
    expect(done.results.map((r) => [r.op, r.key, r.version])).toEqual([
      ['put', '{order-7}/a', done.version],
      ['update', '{order-7}/b', done.version],
      ['insert', '{order-7}/c', done.version],
      ['remove', '{order-7}/absent', null],
    ]);
    expect(done.results[0]?.previous?.value).toBe(1);
    expect(done.results[1]?.previous).toEqual({ value: 2, version: b.version });
    expect(await map.get('{order-7}/c')).toEqual({ value: 30, version: done.version });

    // An insert of a present key refuses the whole transaction.
    const present = await rejection(
      map.transaction().remove('{order-7}/a').insert('{order-7}/c', 0).commit(),
    );
    expect(present.code).toBe('VERSION_MISMATCH');
    expect((present as TransactionError).step).toBe(1);
    expect((await map.get('{order-7}/a'))?.value).toBe(10);
    expect((await rejection(map.transaction().commit())).code).toBe('USAGE');
  });

  it('refuses keys of several groups with TXN_CROSS_GROUP', async () => {
    const map = open().map<number>('txn-cross');
    const tx = map.transaction();
    for (let i = 0; i < 12; i++) tx.put(`spread-${i}`, i);
    const error = await rejection(tx.commit());
    expect(error).toBeInstanceOf(TransactionError);
    expect(error.code).toBe('TXN_CROSS_GROUP');
    expect((error as TransactionError).step).toBeNull();
    expect(await map.size()).toBe(0);
  });
});

/** What a stream of a value says, without the versions. */
function states<S>(items: readonly StreamItem<S>[]): [string, S][] {
  return items.map((item) => [item.type, item.state]);
}

/** Versions grow strictly along a stream. */
function expectGrowing(items: readonly { version: number }[]): void {
  for (let i = 1; i < items.length; i++) {
    expect(items[i]?.version).toBeGreaterThan(items[i - 1]?.version ?? 0);
  }
}

describe('event streams', () => {
  it('streams a value in order, and resumes after the last version without a gap or a duplicate', async () => {
    const cv = open();
    const value = cv.value<number>('ev/value');
    await value.set(0);
    const first = await take(value.events(), 1);
    expect(first).toMatchObject([{ type: 'reset', state: { value: 0 } }]);
    const writes: number[] = [];
    for (let n = 1; n <= 5; n++) writes.push((await value.set(n)).version);
    const stream = value.events({ after: first[0]?.version ?? 0 });
    const part = await take(stream, 3);
    expect(part.map((item) => [item.type, item.version, item.state?.value])).toEqual([
      ['change', writes[0], 1],
      ['change', writes[1], 2],
      ['change', writes[2], 3],
    ]);
    // Closed; more writes; reopened from the last version seen.
    await value.delete();
    await value.set(6);
    const rest = await take(value.events({ after: part.at(-1)?.version ?? 0 }), 4);
    expect(rest.map((item) => item.state?.value ?? null)).toEqual([4, 5, null, 6]);
    expect(rest.every((item) => item.type === 'change')).toBe(true);
    expectGrowing([...part, ...rest]);
    expect(rest[0]?.version).toBe(writes[3]);

    // watch() follows events: no change merged, even when written back to back.
    const stop = new AbortController();
    const seen: (number | null)[] = [];
    for await (const current of value.watch({ signal: stop.signal })) {
      seen.push(current?.value ?? null);
      if (seen.length === 1) {
        await value.set(7);
        await value.set(8);
        await value.set(9);
      }
      if (seen.length === 4) stop.abort();
    }
    expect(seen).toEqual([6, 7, 8, 9]);
  });

  it('waits for changes (long-poll) and ends when the signal aborts', async () => {
    const cv = open();
    const counter = cv.counter('ev/counter');
    const stop = new AbortController();
    const seen: StreamItem<{ value: number }>[] = [];
    const following = (async () => {
      for await (const item of counter.events({ signal: stop.signal })) {
        seen.push(item);
        if (seen.length === 3) stop.abort();
      }
    })();
    await pollUntil(async () => (seen.length === 1 ? true : undefined), { ...poll, what: 'the first reset' });
    await counter.increment(5);
    await counter.decrement(2);
    await following;
    expect(states(seen)).toEqual([
      ['reset', { value: 0, version: 0 }],
      ['change', { value: 5, version: seen[1]?.version }],
      ['change', { value: 3, version: seen[2]?.version }],
    ]);
  });

  it('streams a list, a lock, an election and an indexed map', async () => {
    const [a, b] = [open(), open()];
    const list = a.list<string>('ev/list');
    const listStart = (await take(list.events(), 1))[0];
    await list.append('x');
    await list.append('y');
    await list.remove(0);
    const listChanges = await take(list.events({ after: listStart?.version ?? 0 }), 3);
    expect(listChanges.map((item) => item.state.items)).toEqual([['x'], ['x', 'y'], ['y']]);

    const lockStart = (await take(a.lock('ev/lock').events(), 1))[0];
    expect(lockStart?.state.session).toBeNull();
    const held = await a.lock('ev/lock').acquire();
    const waiting = b.lock('ev/lock').acquire();
    await pollUntil(
      async () => ((await a.lock('ev/lock').holder()).waiters.length === 1 ? true : undefined),
      {
        ...poll,
        what: 'b in line',
      },
    );
    await held.release();
    const next = await waiting;
    await next.release();
    const lockChanges = await take(a.lock('ev/lock').events({ after: lockStart?.version ?? 0 }), 4);
    expect(lockChanges.map((item) => [item.state.session, item.state.fence, item.state.waiters])).toEqual([
      [a.session.id, held.fence, []],
      [a.session.id, held.fence, [b.session.id]],
      [b.session.id, next.fence, []],
      [null, null, []],
    ]);

    const election = a.election('ev/election');
    const electionStart = (await take(election.events(), 1))[0];
    const alice = await a.election('ev/election').enter('alice');
    await b.election('ev/election').enter('bob');
    await alice.withdraw();
    const terms = await take(election.events({ after: electionStart?.version ?? 0 }), 3);
    expect(terms.map((item) => [item.state.leader, item.state.candidates])).toEqual([
      ['alice', ['alice']],
      ['alice', ['alice', 'bob']],
      ['bob', ['bob']],
    ]);
    expect(terms[2]?.state.term).toBeGreaterThan(terms[0]?.state.term ?? 0);

    const im = a.indexedMap<number>('ev/im');
    const imStart = (await take(im.events(), 1))[0];
    await im.append('k', 1);
    await im.update({ key: 'k' }, 2);
    const imChanges = await take(im.events({ after: imStart?.version ?? 0 }), 2);
    expect(imChanges.map((item) => item.state.map((e) => [e.key, e.value]))).toEqual([
      [['k', 1]],
      [['k', 2]],
    ]);
  });

  it('streams one map key, and every key with one cursor per group, resuming per group', async () => {
    const cv = open();
    const map = cv.map<number>('ev/map');
    const keyed = await take(map.events({ key: 'k' }), 1);
    expect(keyed).toMatchObject([{ type: 'reset', state: null }]);
    const cursors = await map.cursors();
    expect(Object.keys(cursors)).toEqual(['0', '1', '2', '3']);
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    for (const [i, key] of keys.entries()) await map.put(key, i);
    await map.put('k', 0);
    await map.put('k', 100);
    await map.remove('k');

    const keyChanges = await take(map.events({ key: 'k', after: keyed[0]?.version ?? 0 }), 3);
    expect(keyChanges.map((item) => item.state?.value ?? null)).toEqual([0, 100, null]);
    expectGrowing(keyChanges);

    // Every key from the cursors: 15 changes over the groups, each once, in order per group.
    const stream = map.events({ after: cursors });
    const firstPart = await take(stream, 7);
    const resumeAfter = { ...cursors };
    for (const item of firstPart) resumeAfter[item.group] = item.version;
    const secondPart = await take(map.events({ after: resumeAfter }), 8);
    const all = [...firstPart, ...secondPart] as GroupStreamItem<MapChange<number>>[];
    expect(all.every((item) => item.type === 'change')).toBe(true);
    const changes = all.filter((item) => item.type === 'change');
    expect(changes.map((item) => `${item.key}=${item.entry?.value ?? null}`).sort()).toEqual(
      [...keys.map((key, i) => `${key}=${i}`), 'k=0', 'k=100', 'k=null'].sort(),
    );
    for (let group = 0; group < 4; group++) expectGrowing(changes.filter((item) => item.group === group));
    // 'k': its three changes in order, from its one group.
    expect(changes.filter((item) => item.key === 'k').map((item) => item.entry?.value ?? null)).toEqual([
      0,
      100,
      null,
    ]);
    // Nothing more: a stream from where the second part ended waits.
    const after = { ...resumeAfter };
    for (const item of secondPart) after[item.group] = item.version;
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    expect(await collect(map.events({ after, signal: stop.signal, waitMs: 1000 }))).toEqual([]);
  });

  it('streams a set and a multimap key', async () => {
    const cv = open();
    const set = cv.set('ev/set');
    const cursors = await set.cursors();
    await set.add('a');
    await set.add('b');
    await set.remove('a');
    const items = await take(set.events({ after: cursors }), 3);
    expect(
      items.map((item) => (item.type === 'change' ? `${item.element}:${item.present}` : item.type)).sort(),
    ).toEqual(['a:false', 'a:true', 'b:true']);

    const mm = cv.multimap<string>('ev/mm');
    const start = (await take(mm.events({ key: 'x' }), 1))[0];
    await mm.put('x', 'one');
    await mm.put('x', 'two');
    await mm.removeAll('x');
    const changes = await take(mm.events({ key: 'x', after: start?.version ?? 0 }), 3);
    expect(changes.map((item) => item.state.values)).toEqual([['one'], ['one', 'two'], []]);
  });

  it('resets from the state read again when the servers no longer hold the changes after the cursor', async () => {
    const cv = open();
    const value = cv.value<string>('ev/compacted');
    const start = (await take(value.events(), 1))[0];
    // 6 MiB of changes in the value's group, past the 4 MiB of eventLogBytesMax: every
    // server's event log drops the oldest.
    const big = 'x'.repeat(300 * 1024);
    for (let i = 0; i < 20; i++) await value.set(`${i}:${big}`);
    await value.set('last');
    const items = await take(value.events({ after: start?.version ?? 0 }), 1);
    expect(items[0]?.type).toBe('reset');
    expect(items[0]?.state?.value).toBe('last');
    // Folding on from the reset: the next change follows it.
    const stream = value.events({ after: items[0]?.version ?? 0 });
    const next = stream.next();
    await value.set('after');
    expect((await next).value).toMatchObject({ type: 'change', state: { value: 'after' } });
    await stream.return();
  }, 120_000);
});
