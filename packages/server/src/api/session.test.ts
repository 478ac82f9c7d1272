import { describe, expect, it } from 'vitest';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';
import { readOf, sessionEntry } from './testing/recording-service.js';

const id = '5f0b3c8e-7d2a-4b1c-9e6f-a1b2c3d4e5f6';
const create = (body?: unknown) => ({
  method: 'PUT' as const,
  url: '/v1/session/create',
  ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
});

describe('PUT /v1/session/create', () => {
  it('creates with Consul defaults when there is no body: this node, release, 15s lock delay, no TTL', async () => {
    const { app, service } = await apiApp({
      nodeName: 'server-1',
      answers: { sessionCreate: async () => ({ id }) },
    });
    const response = await app.inject(create());
    expect([response.statusCode, response.body]).toEqual([200, `{"ID":"${id}"}`]);
    expect(response.headers['content-type']).toBe('application/json');
    expect(service.callsOf('sessionCreate')).toEqual([
      { name: '', node: 'server-1', ttlSeconds: 0, behavior: 'release', lockDelayMs: 15_000 },
    ]);
  });

  it('reads Name, Node, TTL, Behavior and LockDelay (string or nanoseconds, small numbers as seconds); ignores Checks', async () => {
    const { app, service } = await apiApp({ answers: { sessionCreate: async () => ({ id }) } });
    const bodies = [
      {
        Name: 'web-lock',
        Node: 'n2',
        TTL: '15s',
        Behavior: 'delete',
        LockDelay: '5s',
        Checks: ['serfHealth'],
      },
      { name: 'lower', ttl: '1m30s', lockdelay: 2_500_000_000 },
      { TTL: '', LockDelay: 7 },
      { TTL: '0s', LockDelay: '20ns', Behavior: '' },
      { TTL: '86400s', LockDelay: 0 },
    ];
    for (const body of bodies) expect((await app.inject(create(body))).statusCode).toBe(200);
    expect(service.callsOf('sessionCreate')).toEqual([
      { name: 'web-lock', node: 'n2', ttlSeconds: 15, behavior: 'delete', lockDelayMs: 5000 },
      { name: 'lower', node: '', ttlSeconds: 90, behavior: 'release', lockDelayMs: 2500 },
      { name: '', node: '', ttlSeconds: 0, behavior: 'release', lockDelayMs: 7000 },
      { name: '', node: '', ttlSeconds: 0, behavior: 'release', lockDelayMs: 20_000 },
      { name: '', node: '', ttlSeconds: 86_400, behavior: 'release', lockDelayMs: 0 },
    ]);
  });

  it.each([
    ['a TTL under 10s', { TTL: '9s' }, /TTL must be between 10s and 86400s/],
    ['a TTL over a day', { TTL: '86401s' }, /TTL must be between 10s and 86400s/],
    ['a TTL without unit', { TTL: '15' }, /TTL must be a duration/],
    ['a numeric TTL', { TTL: 15 }, /TTL must be a string/],
    ['an unknown behavior', { Behavior: 'keep' }, /Behavior must be "release" or "delete"/],
    ['a negative lock delay', { LockDelay: '-1s' }, /LockDelay must be between 0s and 60s/],
    ['a lock delay over 60s', { LockDelay: '61s' }, /LockDelay must be between 0s and 60s/],
    ['a lock delay that is no duration', { LockDelay: '15' }, /LockDelay must be a duration/],
    ['an empty node', { Node: '' }, /Node must not be empty/],
    ['a huge name', { Name: 'n'.repeat(1025) }, /Name must be at most 1024 bytes/],
    ['an array body', [], /must be a JSON object/],
    ['malformed JSON', '{"TTL":', /failed to parse body/],
  ])('refuses %s with 400 before calling the service', async (_name, body, message) => {
    const target = await apiApp();
    await expectRefused(target, create(body), { status: 400, code: 'BAD_REQUEST', message });
  });

  it('refuses a body over 64 KiB with 413 BODY_TOO_LARGE before calling the service', async () => {
    const target = await apiApp();
    await expectRefused(target, create({ Name: 'n'.repeat(65_536) }), {
      status: 413,
      code: 'BODY_TOO_LARGE',
      message: /larger than 65536 bytes, the most PUT \/v1\/session\/create takes/,
    });
  });
});

describe('session lifecycle routes', () => {
  const session = sessionEntry({
    id,
    name: 'web-lock',
    node: 'n1',
    ttlSeconds: 30,
    behavior: 'delete',
    lockDelayMs: 15_000,
    createIndex: 11,
    modifyIndex: 12,
  });
  const sessionBody =
    `{"ID":"${id}","Name":"web-lock","Node":"n1","LockDelay":15000000000,"Behavior":"delete","TTL":"30s",` +
    '"NodeChecks":[],"ServiceChecks":null,"CreateIndex":11,"ModifyIndex":12}';

  it('destroys (always answering true, as Consul)', async () => {
    const { app, service } = await apiApp({ answers: { sessionDestroy: async () => false } });
    const response = await app.inject({ method: 'PUT', url: `/v1/session/destroy/${id}` });
    expect([response.statusCode, response.body]).toEqual([200, 'true']);
    expect(service.callsOf('sessionDestroy')).toEqual([{ id }]);
  });

  it('renews into a one-session list, or 404 SESSION_NOT_FOUND when it is gone', async () => {
    const { app, service } = await apiApp();
    service.answer('sessionRenew', async () => session);
    const renewed = await app.inject({ method: 'PUT', url: `/v1/session/renew/${id}` });
    expect([renewed.statusCode, renewed.body]).toEqual([200, `[${sessionBody}]`]);
    service.answer('sessionRenew', async () => null);
    const gone = await app.inject({ method: 'PUT', url: `/v1/session/renew/${id}` });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toMatchObject({ code: 'SESSION_NOT_FOUND', message: `session ${id} not found` });
  });

  it('answers info as a list, [] for an unknown session, with the read headers', async () => {
    const { app, service } = await apiApp();
    service.answer('sessionInfo', async () => readOf(session, { index: 12 }));
    const found = await app.inject({ method: 'GET', url: `/v1/session/info/${id}?consistent` });
    expect([found.statusCode, found.body]).toEqual([200, `[${sessionBody}]`]);
    expect(found.headers['x-consul-index']).toBe('12');
    service.answer('sessionInfo', async () => readOf(null));
    const missing = await app.inject({ method: 'GET', url: `/v1/session/info/${id}` });
    expect([missing.statusCode, missing.body]).toEqual([200, '[]']);
    expect(service.callsOf('sessionInfo')[0]).toEqual({
      id,
      consistency: 'consistent',
      maxStaleMs: null,
      block: null,
    });
  });

  it('lists all sessions or one node\'s, TTL "" when there is none', async () => {
    const noTtl = sessionEntry({ id, ttlSeconds: 0 });
    const { app, service } = await apiApp({ answers: { sessionList: async () => readOf([noTtl]) } });
    const all = await app.inject({ method: 'GET', url: '/v1/session/list' });
    expect(all.json()).toEqual([expect.objectContaining({ ID: id, TTL: '', Node: 'node-1' })]);
    expect(all.headers['x-consul-knownleader']).toBe('true');
    await app.inject({ method: 'GET', url: '/v1/session/node/web%2D1' });
    expect(service.callsOf('sessionList').map((call) => call.node)).toEqual([null, 'web-1']);
  });

  it.each([
    ['PUT', '/v1/session/destroy/', /missing session ID/],
    ['PUT', '/v1/session/destroy/not-a-uuid', /session ID must be a UUID/],
    ['PUT', '/v1/session/renew/1234', /session ID must be a UUID/],
    ['GET', '/v1/session/info/', /missing session ID/],
    ['GET', `/v1/session/info/${id}x`, /session ID must be a UUID/],
    ['GET', '/v1/session/node/', /missing node name/],
  ] as const)('refuses %s %s with 400 before calling the service', async (method, url, message) => {
    const target = await apiApp();
    await expectRefused(target, { method, url }, { status: 400, code: 'BAD_REQUEST', message });
  });
});
