import { describe, expect, it } from 'vitest';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import { singleServerPerTest } from './testing/single-server.js';

const groupCount = 4;

const setup = singleServerPerTest({ groupCount });

const lastIndexes = (host: MultiRaftHost<FsmResult>) =>
  [...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex);

describe('agent HTTP routes', () => {
  it('reports the leader and peers as Consul does (JSON strings of Raft addresses)', async () => {
    const { app } = await setup();
    const leader = await app.inject({ method: 'GET', url: '/v1/status/leader' });
    expect(leader.statusCode).toBe(200);
    expect(leader.json()).toBe('127.0.0.1:8300');
    const peers = await app.inject({ method: 'GET', url: '/v1/status/peers' });
    expect(peers.json()).toEqual(['127.0.0.1:8300']);
  });

  it('stores a value and reads it back in every consistency mode, with Consul headers', async () => {
    const { app } = await setup();
    const put = await app.inject({ method: 'PUT', url: '/v1/kv/app/config', payload: Buffer.from('v1') });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toBe(true);
    for (const [mode, effective] of [
      ['', 'leader'],
      ['consistent', 'consistent'],
      ['stale', 'stale'],
    ] as const) {
      const get = await app.inject({ method: 'GET', url: `/v1/kv/app/config?${mode}` });
      expect(get.statusCode).toBe(200);
      const [entry] = get.json<{ Key: string; Value: string; ModifyIndex: number }[]>();
      expect(entry?.Key).toBe('app/config');
      expect(Buffer.from(entry?.Value ?? '', 'base64').toString()).toBe('v1');
      expect(get.headers['x-consul-index']).toBe(String(entry?.ModifyIndex));
      expect(get.headers['x-consul-knownleader']).toBe('true');
      expect(get.headers['x-consul-effective-consistency']).toBe(effective);
    }
    const raw = await app.inject({ method: 'GET', url: '/v1/kv/app/config?raw' });
    expect(raw.body).toBe('v1');
  });

  it('lists recursively across groups and rolls keys up at a separator', async () => {
    const { app } = await setup();
    for (const key of ['svc/a/1', 'svc/a/2', 'svc/b', 'other']) {
      await app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: key });
    }
    const listed = await app.inject({ method: 'GET', url: '/v1/kv/svc/?recurse' });
    expect(listed.json<{ Key: string }[]>().map((e) => e.Key)).toEqual(['svc/a/1', 'svc/a/2', 'svc/b']);
    const keys = await app.inject({ method: 'GET', url: '/v1/kv/svc/?keys&separator=/' });
    expect(keys.json()).toEqual(['svc/a/', 'svc/b']);
  });

  it('answers a missing key with 404 and an oversized value with 413, writing nothing', async () => {
    const { app, host } = await setup();
    const before = lastIndexes(host);
    expect((await app.inject({ method: 'GET', url: '/v1/kv/nope' })).statusCode).toBe(404);
    const big = await app.inject({
      method: 'PUT',
      url: '/v1/kv/big',
      payload: Buffer.alloc(512 * 1024 + 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'VALUE_TOO_LARGE' });
    const badCas = await app.inject({ method: 'PUT', url: '/v1/kv/k?cas=minus-one', payload: 'x' });
    expect(badCas.statusCode).toBe(400);
    expect(badCas.json<{ message: string }>().message).toMatch(/cas/);
    expect(lastIndexes(host)).toEqual(before);
  });

  it('takes and releases a lock with a session, and a txn across groups is refused', async () => {
    const { app } = await setup();
    const created = await app.inject({ method: 'PUT', url: '/v1/session/create', payload: { TTL: '15s' } });
    const { ID } = created.json<{ ID: string }>();
    const acquire = await app.inject({
      method: 'PUT',
      url: `/v1/kv/lock/leader?acquire=${ID}`,
      payload: 'me',
    });
    expect(acquire.json()).toBe(true);
    const [held] = (await app.inject({ method: 'GET', url: '/v1/kv/lock/leader' })).json<
      { Session: string; LockIndex: number }[]
    >();
    expect(held).toMatchObject({ Session: ID, LockIndex: 1 });
    const release = await app.inject({
      method: 'PUT',
      url: `/v1/kv/lock/leader?release=${ID}`,
      payload: 'me',
    });
    expect(release.json()).toBe(true);
    const txn = await app.inject({
      method: 'PUT',
      url: '/v1/txn',
      payload: [
        { KV: { Verb: 'set', Key: 'a', Value: Buffer.from('1').toString('base64') } },
        { KV: { Verb: 'set', Key: 'b', Value: Buffer.from('2').toString('base64') } },
        { KV: { Verb: 'set', Key: 'c', Value: Buffer.from('3').toString('base64') } },
      ],
    });
    // With 4 groups, a, b and c do not all hash to one group.
    expect(txn.statusCode).toBe(400);
    expect(txn.json()).toMatchObject({ code: 'TXN_CROSS_GROUP' });
  });

  it('answers an unknown route with a catalogue 404, not a bare one', async () => {
    const { app } = await setup();
    const answer = await app.inject({ method: 'GET', url: '/v1/nope?x=1' });
    expect(answer.statusCode).toBe(404);
    expect(answer.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', message: 'no route GET /v1/nope' });
  });

  it('keeps the leader-only internal key path for tests and benchmarks', async () => {
    const { app } = await setup();
    const put = await app.inject({ method: 'PUT', url: '/v1/internal/kv/app/x', payload: Buffer.from('v1') });
    expect(put.statusCode).toBe(200);
    const get = await app.inject({ method: 'GET', url: '/v1/internal/kv/app/x?mode=lease' });
    expect(get.body).toBe('v1');
    const self = await app.inject({ method: 'GET', url: '/v1/agent/self' });
    expect(self.json<{ groups: { role: string }[] }>().groups.map((g) => g.role)).toEqual(
      Array(groupCount).fill('leader'),
    );
  });

  it('validates transfer-leader input: a bad group is 400, a target that is not a voter is 400', async () => {
    const { app } = await setup();
    const badGroup = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=99&to=x',
    });
    expect(badGroup.statusCode).toBe(400);
    expect(badGroup.json()).toMatchObject({ code: 'CONFIG_INVALID' });
    const badTarget = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=0&to=ghost',
    });
    expect(badTarget.statusCode).toBe(400);
    expect(badTarget.json()).toMatchObject({ code: 'TRANSFER_TARGET_INVALID' });
  });
});
