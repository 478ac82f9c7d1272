import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';

const setup = singleServerPerTest();

type App = Awaited<ReturnType<typeof setup>>['app'];

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(app: App, path: string, body?: unknown, query = ''): Promise<Answer> {
  const answer = await app.inject({
    method: 'POST',
    url: `/v1/primitive/${path}${query}`,
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: answer.statusCode, body: answer.json() };
}

async function result(app: App, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const answer = await call(app, path, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.result as Record<string, unknown>;
}

async function session(app: App): Promise<string> {
  const answer = await app.inject({ method: 'PUT', url: '/v1/session/create', payload: '{"TTL":"10s"}' });
  expect(answer.statusCode).toBe(200);
  return answer.json<{ ID: string }>().ID;
}

const base64 = (text: string) => Buffer.from(text).toString('base64');

describe('primitives over HTTP', () => {
  it('counts: increments apply in order and get reads the last, at its version', async () => {
    const { app } = await setup();
    await result(app, 'counter/c/increment', { args: { delta: 5 } });
    const second = await result(app, 'counter/c/decrement', { args: { delta: 2 } });
    expect(second.value).toBe(3);
    expect(await result(app, 'counter/c/get')).toEqual({ value: 3, version: second.version });
  });

  it('applies a retried write with the same session and seq once, answering the first result again', async () => {
    const { app } = await setup();
    const s = await session(app);
    const first = await result(app, 'counter/once/increment', { session: s, seq: 1 });
    const retried = await result(app, 'counter/once/increment', { session: s, seq: 1 });
    expect(retried).toEqual(first);
    expect((await result(app, 'counter/once/get')).value).toBe(1);
  });

  it('answers a retry whose result was too large to keep with REQUEST_EXPIRED, and applies it once', async () => {
    const { app } = await setup();
    const s = await session(app);
    const big = Buffer.alloc(100 * 1024, 1).toString('base64');
    await result(app, 'map/big/put', { session: s, seq: 1, args: { key: 'k', value: big } });
    // The second put's result carries the first's 100 KiB value as `previous`.
    const second = await result(app, 'map/big/put', { session: s, seq: 2, args: { key: 'k', value: big } });
    expect((second.previous as { value: string }).value).toBe(big);
    const retried = await call(app, 'map/big/put', { session: s, seq: 2, args: { key: 'k', value: big } });
    expect(retried.status).toBe(409);
    expect(retried.body.code).toBe('REQUEST_EXPIRED');
    expect((await result(app, 'map/big/get', { args: { key: 'k' } })).version).toBe(second.version);
  });

  it('refuses a state past one row with VALUE_TOO_LARGE and keeps the old one', async () => {
    const { app } = await setup();
    // A list is one row: two 400 KiB items would take 800 KiB, past a row's 704 KiB.
    const item = Buffer.alloc(400 * 1024, 7).toString('base64');
    await result(app, 'list/heavy/append', { args: { value: item } });
    const answer = await call(app, 'list/heavy/append', { args: { value: item } });
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe('VALUE_TOO_LARGE');
    expect(await result(app, 'list/heavy/size')).toEqual({ size: 1, version: expect.any(Number) });
  });

  it('hands a lock to its waiter when the holder releases, with a larger fence', async () => {
    const { app } = await setup();
    const [a, b] = [await session(app), await session(app)];
    const held = await result(app, 'lock/l/acquire', { session: a, seq: 1 });
    expect(held.fence).toEqual(expect.any(Number));
    expect(await result(app, 'lock/l/acquire', { session: b, seq: 1 })).toEqual({ fence: null, position: 1 });
    await result(app, 'lock/l/release', { args: { fence: held.fence } });
    const holder = await result(app, 'lock/l/holder');
    expect(holder.session).toBe(b);
    expect(holder.fence as number).toBeGreaterThan(held.fence as number);
  });

  it('releases a lock whose session is destroyed to the next waiter', async () => {
    const { app } = await setup();
    const [a, b] = [await session(app), await session(app)];
    await result(app, 'lock/gone/acquire', { session: a });
    await result(app, 'lock/gone/acquire', { session: b });
    await app.inject({ method: 'PUT', url: `/v1/session/destroy/${a}` });
    expect((await result(app, 'lock/gone/holder')).session).toBe(b);
    const stale = await call(app, 'lock/gone/acquire', { session: a });
    expect(stale.status).toBe(410);
    expect(stale.body.code).toBe('SESSION_EXPIRED');
  });

  it('blocks a read until the primitive changes past the index given', async () => {
    const { app } = await setup();
    const first = await call(app, 'value/v/get');
    const index = first.body.index as number;
    const waiting = call(app, 'value/v/get', undefined, `?index=${index}&wait=30s`);
    await result(app, 'value/v/set', { args: { value: base64('hello') } });
    const changed = await waiting;
    expect(changed.body.index as number).toBeGreaterThan(index);
    expect((changed.body.result as { value: string }).value).toBe(base64('hello'));
  });

  it('keeps map entries apart from Consul KV: listing and deleting every key leaves them', async () => {
    const { app } = await setup();
    await result(app, 'map/m/put', { args: { key: 'a', value: base64('1') } });
    await app.inject({ method: 'PUT', url: '/v1/kv/user', payload: 'x' });
    const listed = await app.inject({ method: 'GET', url: '/v1/kv/?recurse' });
    expect(listed.json<{ Key: string }[]>().map((e) => e.Key)).toEqual(['user']);
    await app.inject({ method: 'DELETE', url: '/v1/kv/?recurse' });
    expect(await result(app, 'map/m/get', { args: { key: 'a' } })).toEqual({
      value: base64('1'),
      version: expect.any(Number),
    });
    expect(await result(app, 'map/m/size')).toEqual({ size: 1 });
  });

  it('pages a map across groups: every entry once', async () => {
    const { app } = await setup();
    const keys = Array.from({ length: 25 }, (_, i) => `k${i}`);
    for (const key of keys) await result(app, 'map/paged/put', { args: { key, value: base64(key) } });
    const seen: string[] = [];
    let groups = 1;
    for (let group = 0; group < groups; group++) {
      let after: string | undefined;
      for (;;) {
        const page = await result(app, 'map/paged/entries', {
          group,
          args: { limit: 3, ...(after === undefined ? {} : { after }) },
        });
        groups = page.groups as number;
        const entries = page.entries as { key: string; value: string }[];
        for (const entry of entries) {
          expect(entry.value).toBe(base64(entry.key));
          seen.push(entry.key);
        }
        if (page.more !== true) break;
        after = entries.at(-1)?.key;
      }
    }
    expect(seen.sort()).toEqual([...keys].sort());
  });
});

describe('map transactions', () => {
  it('apply every step or none, each step seeing the ones before it', async () => {
    const { app } = await setup();
    const a = await result(app, 'map/tx/put', { args: { key: '{o}a', value: base64('1') } });
    const done = await result(app, 'map/tx/transaction', {
      args: {
        steps: [
          { op: 'update', key: '{o}a', value: base64('2'), ifVersion: a.version },
          { op: 'insert', key: '{o}b', value: base64('3') },
          { op: 'update', key: '{o}b', value: base64('4') },
        ],
      },
    });
    expect((done.results as unknown[]).length).toBe(3);
    expect((await result(app, 'map/tx/get', { args: { key: '{o}b' } })).value).toBe(base64('4'));
    const refused = await call(app, 'map/tx/transaction', {
      args: {
        steps: [
          { op: 'remove', key: '{o}a' },
          { op: 'insert', key: '{o}b', value: base64('5') },
        ],
      },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('VERSION_MISMATCH');
    expect(refused.body.message).toMatch(/^map tx|step 1/);
    expect((await result(app, 'map/tx/get', { args: { key: '{o}a' } })).value).toBe(base64('2'));
  });

  it('refuses keys in different groups with TXN_CROSS_GROUP', async () => {
    const { app } = await setup();
    const steps = Array.from({ length: 16 }, (_, i) => ({ op: 'put', key: `k${i}`, value: base64('v') }));
    const answer = await call(app, 'map/tx2/transaction', { args: { steps } });
    expect(answer.body.code).toBe('TXN_CROSS_GROUP');
    expect(await result(app, 'map/tx2/size')).toEqual({ size: 0 });
  });
});

describe('primitives with a time to live', () => {
  it('removes a map entry once its TTL passes, unless it was written again without one', async () => {
    const { app } = await setup();
    // Same group for both keys does not matter: each key's deadline is its own.
    await result(app, 'map/ttl/put', { args: { key: 'kept', value: base64('1'), ttlMs: 1000 } });
    await result(app, 'map/ttl/put', { args: { key: 'kept', value: base64('2') } });
    const doomed = await result(app, 'map/ttl/put', {
      args: { key: 'doomed', value: base64('3'), ttlMs: 1000 },
    });
    // Blocks until the entry changes (its expiry), armed after kept's first write.
    const gone = await call(
      app,
      'map/ttl/get',
      { args: { key: 'doomed' } },
      `?index=${doomed.version}&wait=30s`,
    );
    expect(gone.body.result).toBeNull();
    expect((await result(app, 'map/ttl/get', { args: { key: 'kept' } })).value).toBe(base64('2'));
  });

  it('empties a value once its TTL passes, keeping its version growing', async () => {
    const { app } = await setup();
    const set = await result(app, 'value/ttlv/set', { args: { value: base64('x'), ttlMs: 1000 } });
    const expired = await call(app, 'value/ttlv/get', undefined, `?index=${set.version}&wait=30s`);
    const after = expired.body.result as { value: unknown; version: number };
    expect(after.value).toBeNull();
    expect(after.version).toBeGreaterThan(set.version as number);
  });

  it('refuses a TTL under a second or over a day', async () => {
    const { app } = await setup();
    for (const ttlMs of [999, 86_400_001]) {
      const answer = await call(app, 'set/ttls/add', { args: { key: 'e', ttlMs } });
      expect(answer.body.code).toBe('BAD_REQUEST');
    }
  });
});

describe('primitive events over HTTP', () => {
  it('sends every change after a version, in order, each with its version, and resumes without gaps or repeats', async () => {
    const { app } = await setup();
    const versions: number[] = [];
    for (const text of ['a', 'b', 'c']) {
      versions.push((await result(app, 'value/ev/set', { args: { value: base64(text) } })).version as number);
    }
    const all = await result(app, 'value/ev/events', { args: { after: 0 } });
    expect(all.compacted).toBe(false);
    const events = all.events as { version: number; state: { value: string } }[];
    expect(events.map((e) => e.version)).toEqual(versions);
    expect(events.map((e) => e.state.value)).toEqual(['a', 'b', 'c'].map(base64));
    const resumed = await result(app, 'value/ev/events', { args: { after: versions[1] } });
    expect((resumed.events as { version: number }[]).map((e) => e.version)).toEqual([versions[2]]);
  });

  it('waits for the next change when none is newer than the version given', async () => {
    const { app } = await setup();
    const first = await result(app, 'counter/evc/increment');
    const waiting = call(app, 'counter/evc/events', { args: { after: first.version } }, '?wait=30s');
    const second = await result(app, 'counter/evc/increment');
    const answer = await waiting;
    const events = (answer.body.result as { events: { version: number; state: { value: number } }[] }).events;
    expect(events).toEqual([{ version: second.version, state: { value: 2, version: second.version } }]);
  });

  it('streams one map key’s puts and removal, and a lock’s hand-off when its holder’s session ends', async () => {
    const { app } = await setup();
    await result(app, 'map/evm/put', { args: { key: 'k', value: base64('1') } });
    await result(app, 'map/evm/put', { args: { key: 'other', value: base64('x') } });
    await result(app, 'map/evm/remove', { args: { key: 'k' } });
    const keyed = await result(app, 'map/evm/events', { args: { key: 'k' } });
    expect((keyed.events as { key: string; state: unknown }[]).map((e) => [e.key, e.state === null])).toEqual(
      [
        ['k', false],
        ['k', true],
      ],
    );
    const [a, b] = [await session(app), await session(app)];
    await result(app, 'lock/evl/acquire', { session: a });
    await result(app, 'lock/evl/acquire', { session: b });
    await app.inject({ method: 'PUT', url: `/v1/session/destroy/${a}` });
    const lockEvents = (await result(app, 'lock/evl/events')).events as { state: { session: string } }[];
    expect(lockEvents.map((e) => e.state.session)).toEqual([a, a, b]);
  });
});

describe('lists, indexed maps and multimaps over HTTP', () => {
  it('keeps a list in order through append, insert, set and remove', async () => {
    const { app } = await setup();
    for (const item of ['a', 'c']) await result(app, 'list/l/append', { args: { value: base64(item) } });
    await result(app, 'list/l/insert', { args: { index: 1, value: base64('b') } });
    await result(app, 'list/l/set', { args: { index: 2, value: base64('C') } });
    const removed = await result(app, 'list/l/remove', { args: { index: 0 } });
    expect(removed.previous).toBe(base64('a'));
    const items = await result(app, 'list/l/items');
    expect(items.items).toEqual([base64('b'), base64('C')]);
    const past = await call(app, 'list/l/get', { args: { index: 2 } });
    expect(past.body.result).toBeNull();
    const outside = await call(app, 'list/l/insert', { args: { index: 5, value: base64('x') } });
    expect(outside.body.code).toBe('INDEX_OUT_OF_RANGE');
  });

  it('walks an indexed map in append order, by key or index, with entry versions', async () => {
    const { app } = await setup();
    const a = await result(app, 'indexedmap/q/append', { args: { key: 'a', value: base64('1') } });
    const b = await result(app, 'indexedmap/q/append', { args: { key: 'b', value: base64('2') } });
    expect(b.index as number).toBeGreaterThan(a.index as number);
    expect((await result(app, 'indexedmap/q/first')).key).toBe('a');
    expect((await result(app, 'indexedmap/q/next', { args: { index: a.index } })).key).toBe('b');
    expect((await result(app, 'indexedmap/q/get', { args: { index: b.index } })).value).toBe(base64('2'));
    const stale = await call(app, 'indexedmap/q/update', {
      args: { key: 'a', value: base64('x'), ifVersion: b.version },
    });
    expect(stale.body.code).toBe('VERSION_MISMATCH');
    await result(app, 'indexedmap/q/remove', { args: { key: 'a', ifVersion: a.version } });
    expect((await result(app, 'indexedmap/q/first')).key).toBe('b');
    const both = await call(app, 'indexedmap/q/get', { args: { key: 'b', index: b.index } });
    expect(both.body.code).toBe('BAD_REQUEST');
  });

  it('keeps a multimap key’s values distinct and counts every pair in size', async () => {
    const { app } = await setup();
    const values = ['x', 'y', 'x'].map(base64);
    expect((await result(app, 'multimap/mm/putAll', { args: { key: 'k', values } })).added).toBe(2);
    await result(app, 'multimap/mm/put', { args: { key: 'j', value: base64('z') } });
    expect((await result(app, 'multimap/mm/get', { args: { key: 'k' } })).values).toEqual([
      base64('x'),
      base64('y'),
    ]);
    expect(await result(app, 'multimap/mm/size')).toEqual({ size: 3 });
    expect(
      (await result(app, 'multimap/mm/containsEntry', { args: { key: 'k', value: base64('y') } })).contains,
    ).toBe(true);
    await result(app, 'multimap/mm/removeAll', { args: { key: 'k' } });
    expect(await result(app, 'multimap/mm/size')).toEqual({ size: 1 });
  });
});

describe('primitives over msgpack', () => {
  it('takes a msgpack body with raw bytes and answers msgpack when asked', async () => {
    const { app } = await setup();
    const packr = new Packr({ useRecords: false });
    const value = new Uint8Array([0, 1, 2, 255]);
    const put = await app.inject({
      method: 'POST',
      url: '/v1/primitive/value/mp/set',
      headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' },
      payload: packr.pack({ args: { value } }),
    });
    expect(put.statusCode).toBe(200);
    expect(put.headers['content-type']).toMatch(/^application\/msgpack/);
    const written = packr.unpack(put.rawPayload) as { result: { version: number }; index: number };
    expect(written.result.version).toEqual(expect.any(Number));
    // The same value read back over JSON, as base64.
    expect((await result(app, 'value/mp/get')).value).toBe(Buffer.from(value).toString('base64'));
    const garbage = await app.inject({
      method: 'POST',
      url: '/v1/primitive/value/mp/set',
      headers: { 'content-type': 'application/msgpack' },
      payload: Buffer.from([0xc1]),
    });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json<{ code: string }>().code).toBe('BAD_REQUEST');
  });
});

describe('primitives refuse bad input with a catalogue code and apply nothing', () => {
  it.each([
    ['an unknown kind', 'queue/q/push', {}, 404, 'PRIMITIVE_UNKNOWN'],
    ['an unknown operation', 'counter/c/explode', {}, 404, 'PRIMITIVE_UNKNOWN'],
    ['a wrong type', 'counter/c/increment', { args: { delta: 'five' } }, 400, 'BAD_REQUEST'],
    ['a fraction', 'counter/c/increment', { args: { delta: 1.5 } }, 400, 'BAD_REQUEST'],
    ['an unknown argument', 'counter/c/increment', { args: { delta: 1, by: 2 } }, 400, 'BAD_REQUEST'],
    ['a value not in base64', 'value/c/set', { args: { value: '!!' } }, 400, 'BAD_REQUEST'],
    ['a body that is not JSON', 'counter/c/increment', '{', 400, 'BAD_REQUEST'],
    ['an unknown body field', 'counter/c/increment', { argz: {} }, 400, 'BAD_REQUEST'],
    ['a lock acquire without a session', 'lock/c/acquire', {}, 400, 'SESSION_REQUIRED'],
    ['a seq without a session', 'counter/c/increment', { seq: 1 }, 400, 'BAD_REQUEST'],
    [
      'a session that does not exist',
      'counter/c/increment',
      { session: '00000000-0000-0000-0000-000000000000' },
      410,
      'SESSION_EXPIRED',
    ],
    ['negative permits', 'semaphore/c/setPermits', { args: { permits: -1 } }, 400, 'BAD_REQUEST'],
    ['a page too large', 'map/c/entries', { args: { limit: 100_000 } }, 400, 'BAD_REQUEST'],
    ['a group past the last', 'map/c/entries', { group: 99 }, 400, 'BAD_REQUEST'],
    ['a name with a control character', 'counter/a%01b/increment', {}, 400, 'BAD_REQUEST'],
  ])('%s', async (_what, path, body, status, code) => {
    const { app } = await setup();
    const answer = await call(app, path, body);
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(answer.body.advice).toEqual(expect.any(String));
    expect((await result(app, 'counter/c/get')).value).toBe(0);
  });

  it('refuses a value over kvValueBytesMax with VALUE_TOO_LARGE', async () => {
    const { app } = await setup();
    const answer = await call(app, 'value/big/set', {
      args: { value: Buffer.alloc(600 * 1024).toString('base64') },
    });
    expect(answer.status).toBe(413);
    expect(answer.body.code).toBe('VALUE_TOO_LARGE');
    expect(await result(app, 'value/big/get')).toEqual({ value: null, version: 0 });
  });

  it('refuses a release with another lock’s fence and keeps both locks held', async () => {
    const { app } = await setup();
    const s = await session(app);
    const one = await result(app, 'lock/one/acquire', { session: s });
    const two = await result(app, 'lock/two/acquire', { session: s });
    const answer = await call(app, 'lock/one/release', { args: { fence: two.fence } });
    expect(answer.status).toBe(409);
    expect(answer.body.code).toBe('LOCK_NOT_HELD');
    expect((await result(app, 'lock/one/holder')).fence).toBe(one.fence);
    expect((await result(app, 'lock/two/holder')).fence).toBe(two.fence);
  });

  it('refuses more permits than the semaphore has with PERMITS_INVALID', async () => {
    const { app } = await setup();
    const s = await session(app);
    await result(app, 'semaphore/s/setPermits', { args: { permits: 2 } });
    const answer = await call(app, 'semaphore/s/acquire', { session: s, args: { permits: 3 } });
    expect(answer.status).toBe(409);
    expect(answer.body.code).toBe('PERMITS_INVALID');
    expect((await result(app, 'semaphore/s/availablePermits')).available).toBe(2);
  });
});
