import { describe, expect, it } from 'vitest';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';
import { kvEntry, readOf } from './testing/recording-service.js';

const sessionId = 'adf4238a-882b-9ddc-4a9d-5b6758e4159e';
const bytes = (text: string) => new Uint8Array(Buffer.from(text));
const noBlock = { consistency: 'default', maxStaleMs: null, block: null };

describe('GET /v1/kv/<key>', () => {
  it('answers one entry as Consul does, with the read headers', async () => {
    const entry = kvEntry({
      key: 'app/config',
      value: bytes('v1'),
      flags: 5,
      createIndex: 3,
      modifyIndex: 4,
    });
    const { app, service } = await apiApp({
      answers: { kvGet: async () => readOf(entry, { index: 4, lastContactMs: 12.7, knownLeader: false }) },
    });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/app/config' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body).toBe(
      '[{"LockIndex":0,"Key":"app/config","Flags":5,"Value":"djE=","CreateIndex":3,"ModifyIndex":4}]',
    );
    expect(response.headers['x-consul-index']).toBe('4');
    expect(response.headers['x-consul-knownleader']).toBe('false');
    expect(response.headers['x-consul-lastcontact']).toBe('12');
    expect(response.headers['x-consul-effective-consistency']).toBe('leader');
    expect(service.callsOf('kvGet')).toEqual([{ key: 'app/config', ...noBlock }]);
  });

  it('shows the holding session, null for an empty value, and never an X-Consul-Index of 0', async () => {
    const entry = kvEntry({ key: 'lock', lockIndex: 2, session: sessionId });
    const { app } = await apiApp({ answers: { kvGet: async () => readOf(entry, { index: 0 }) } });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/lock' });
    expect(response.body).toBe(
      `[{"LockIndex":2,"Key":"lock","Flags":0,"Value":null,"Session":"${sessionId}","CreateIndex":1,"ModifyIndex":1}]`,
    );
    expect(response.headers['x-consul-index']).toBe('1');
  });

  it('answers a missing key with a bare 404 that still carries the index', async () => {
    const { app } = await apiApp({ answers: { kvGet: async () => readOf(null, { index: 9 }) } });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/missing' });
    expect(response.statusCode).toBe(404);
    expect(response.body).toBe('');
    expect(response.headers['x-consul-index']).toBe('9');
  });

  it('returns the bare value bytes with ?raw', async () => {
    const value = new Uint8Array([0, 255, 10, 13]);
    const { app } = await apiApp({ answers: { kvGet: async () => readOf(kvEntry({ key: 'bin', value })) } });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/bin?raw' });
    expect(response.statusCode).toBe(200);
    expect(new Uint8Array(response.rawPayload)).toEqual(value);
    expect(response.headers['x-consul-index']).toBe('42');
  });

  it('decodes the key from the path, %2F and UTF-8 included', async () => {
    const { app, service } = await apiApp({ answers: { kvGet: async () => readOf(null) } });
    await app.inject({ method: 'GET', url: '/v1/kv/a%2Fb/%E2%82%AC%20x' });
    expect(service.callsOf('kvGet').map((call) => call.key)).toEqual(['a/b/€ x']);
  });

  it('lists a prefix with ?recurse (the empty prefix is the whole keyspace); nothing is a 404', async () => {
    const entries = [kvEntry({ key: 'a/1', value: bytes('x') }), kvEntry({ key: 'a/2' })];
    const { app, service } = await apiApp({
      answers: { kvList: async ({ prefix }) => readOf(prefix === 'a/' || prefix === '' ? entries : []) },
    });
    const listed = await app.inject({ method: 'GET', url: '/v1/kv/a/?recurse' });
    expect(listed.statusCode).toBe(200);
    expect(listed.json<{ Key: string }[]>().map((e) => e.Key)).toEqual(['a/1', 'a/2']);
    expect((await app.inject({ method: 'GET', url: '/v1/kv/?recurse=true' })).statusCode).toBe(200);
    const none = await app.inject({ method: 'GET', url: '/v1/kv/b/?recurse' });
    expect(none.statusCode).toBe(404);
    expect(none.body).toBe('');
    expect(service.callsOf('kvList').map((call) => call.prefix)).toEqual(['a/', '', 'b/']);
  });

  it('lists keys with ?keys and a separator (either spelling); an empty root is [], an empty prefix 404', async () => {
    const { app, service } = await apiApp({
      answers: { kvKeys: async ({ prefix }) => readOf(prefix === 'a/' ? ['a/1', 'a/sub/'] : []) },
    });
    const keys = await app.inject({ method: 'GET', url: '/v1/kv/a/?keys&separator=/' });
    expect(keys.body).toBe('["a/1","a/sub/"]');
    expect(keys.headers['x-consul-index']).toBe('42');
    const root = await app.inject({ method: 'GET', url: '/v1/kv/?keys&seperator=-' });
    expect([root.statusCode, root.body]).toEqual([200, '[]']);
    const missing = await app.inject({ method: 'GET', url: '/v1/kv/zz?keys&recurse' });
    expect([missing.statusCode, missing.body]).toEqual([404, '']);
    expect(service.callsOf('kvKeys')).toEqual([
      { prefix: 'a/', separator: '/', ...noBlock },
      { prefix: '', separator: '-', ...noBlock },
      { prefix: 'zz', separator: null, ...noBlock },
    ]);
  });

  it('indents with ?pretty and escapes HTML characters as Go does', async () => {
    const entry = kvEntry({ key: '<a&b>' });
    const { app } = await apiApp({ answers: { kvGet: async () => readOf(entry) } });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/%3Ca%26b%3E?pretty' });
    expect(response.body).toContain(
      '\n    {\n        "LockIndex": 0,\n        "Key": "\\u003ca\\u0026b\\u003e",',
    );
    expect(response.body.endsWith(']\n')).toBe(true);
  });

  it.each([
    ['/v1/kv/', /missing key name/],
    ['/v1/kv//etc', /must not begin with '\/'/],
    ['/v1/kv/k?consistent&stale', /conflicting/],
    ['/v1/kv/k?index=abc', /index must be an unsigned integer/],
    ['/v1/kv/k?index=-1', /index must be an unsigned integer/],
    ['/v1/kv/k?index=1&wait=10', /wait must be a duration/],
    ['/v1/kv/k?max_stale=soon', /max_stale must be a duration/],
    [`/v1/kv/${'k'.repeat(17)}`, /key name is 17 bytes, more than the limit of 16/],
    [`/v1/kv/${'k'.repeat(17)}?keys`, /key prefix is 17 bytes/],
  ])('refuses GET %s with 400 before calling the service', async (url, message) => {
    const target = await apiApp({ limits: { kvKeyBytesMax: 16 } });
    await expectRefused(target, { method: 'GET', url }, { status: 400, code: 'BAD_REQUEST', message });
  });
});

describe('PUT /v1/kv/<key>', () => {
  it('stores the raw body with flags; a plain set answers true', async () => {
    const { app, service } = await apiApp({ answers: { kvPut: async () => ({ ok: true, index: 5 }) } });
    const response = await app.inject({
      method: 'PUT',
      url: '/v1/kv/app/config?flags=42&unknown=1',
      headers: { 'content-type': 'application/json' },
      payload: '{"not":"parsed"}',
    });
    expect([response.statusCode, response.body]).toEqual([200, 'true']);
    expect(response.headers['content-type']).toBe('application/json');
    expect(service.callsOf('kvPut')).toEqual([
      {
        key: 'app/config',
        value: bytes('{"not":"parsed"}'),
        flags: 42,
        cas: null,
        acquire: null,
        release: null,
      },
    ]);
  });

  it('passes cas, acquire and release through and answers the outcome', async () => {
    const { app, service } = await apiApp({ answers: { kvPut: async () => ({ ok: false, index: 5 }) } });
    for (const query of ['cas=0', 'cas=17', `acquire=${sessionId}`, `release=${sessionId}`]) {
      const response = await app.inject({ method: 'PUT', url: `/v1/kv/k?${query}`, payload: 'v' });
      expect(response.body, query).toBe('false');
    }
    const calls = service.callsOf('kvPut').map(({ cas, acquire, release }) => ({ cas, acquire, release }));
    expect(calls).toEqual([
      { cas: 0, acquire: null, release: null },
      { cas: 17, acquire: null, release: null },
      { cas: null, acquire: sessionId, release: null },
      { cas: null, acquire: null, release: sessionId },
    ]);
  });

  it('stores an empty value when there is no body, and accepts a value exactly at the limit', async () => {
    const { app, service } = await apiApp({
      limits: { kvValueBytesMax: 8 },
      answers: { kvPut: async () => ({ ok: true, index: 1 }) },
    });
    await app.inject({ method: 'PUT', url: '/v1/kv/empty' });
    await app.inject({ method: 'PUT', url: '/v1/kv/full', payload: Buffer.alloc(8, 1) });
    expect(service.callsOf('kvPut').map((call) => call.value.byteLength)).toEqual([0, 8]);
  });

  it('refuses a value over kvValueBytesMax with 413 VALUE_TOO_LARGE, writing nothing', async () => {
    const target = await apiApp({ limits: { kvValueBytesMax: 8 } });
    await expectRefused(
      target,
      { method: 'PUT', url: '/v1/kv/big', payload: Buffer.alloc(9, 1) },
      { status: 413, code: 'VALUE_TOO_LARGE', message: /larger than kvValueBytesMax \(8 bytes\)/ },
    );
  });

  it.each([
    ['/v1/kv/', /missing key name/],
    ['/v1/kv//abs', /must not begin with '\/'/],
    [`/v1/kv/${'k'.repeat(17)}`, /more than the limit of 16/],
    ['/v1/kv/k?flags=-1', /flags must be an unsigned integer/],
    ['/v1/kv/k?flags=abc', /flags must be an unsigned integer/],
    ['/v1/kv/k?flags=', /flags must be an unsigned integer/],
    ['/v1/kv/k?cas=1.5', /cas must be an unsigned integer/],
    ['/v1/kv/k?cas=9007199254740992', /cas must be an unsigned integer up to 9007199254740991/],
    ['/v1/kv/k?acquire=not-a-uuid', /acquire must be a UUID/],
    ['/v1/kv/k?acquire=', /missing acquire/],
    ['/v1/kv/k?release=123', /release must be a UUID/],
    [`/v1/kv/k?cas=1&acquire=${sessionId}`, /conflicting flags: cas, acquire/],
    [`/v1/kv/k?acquire=${sessionId}&release=${sessionId}`, /conflicting flags: acquire, release/],
  ])('refuses PUT %s with 400 before calling the service', async (url, message) => {
    const target = await apiApp({ limits: { kvKeyBytesMax: 16 } });
    await expectRefused(
      target,
      { method: 'PUT', url, payload: 'v' },
      { status: 400, code: 'BAD_REQUEST', message },
    );
  });
});

describe('DELETE /v1/kv/<key>', () => {
  it('deletes a key or a tree and answers true; with cas it answers the outcome', async () => {
    const { app, service } = await apiApp({ answers: { kvDelete: async () => ({ ok: false, index: 3 }) } });
    const plain = await app.inject({ method: 'DELETE', url: '/v1/kv/k' });
    const tree = await app.inject({ method: 'DELETE', url: '/v1/kv/dir/?recurse' });
    const cas = await app.inject({ method: 'DELETE', url: '/v1/kv/k?cas=8' });
    expect([plain.body, tree.body, cas.body]).toEqual(['true', 'true', 'false']);
    expect(service.callsOf('kvDelete')).toEqual([
      { key: 'k', recurse: false, cas: null },
      { key: 'dir/', recurse: true, cas: null },
      { key: 'k', recurse: false, cas: 8 },
    ]);
  });

  it.each([
    ['/v1/kv/', /missing key name/],
    ['/v1/kv/?recurse', /missing key name/],
    ['/v1/kv/k?recurse&cas=1', /conflicting flags: recurse, cas/],
    ['/v1/kv/k?cas=x', /cas must be an unsigned integer/],
  ])('refuses DELETE %s with 400 before calling the service', async (url, message) => {
    const target = await apiApp();
    await expectRefused(target, { method: 'DELETE', url }, { status: 400, code: 'BAD_REQUEST', message });
  });
});
