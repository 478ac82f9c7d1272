import { createServer } from 'node:net';
import { errorCatalogue } from '@conclave/protocol';
import { type DevAgent, fakeServer, sendCode, startDevAgent } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConclaveClient } from './client.js';
import { ConclaveClientError } from './errors.js';

const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('utf8');

/** The error a promise rejects with, or a failure if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<ConclaveClientError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ConclaveClientError);
  return outcome.error as ConclaveClientError;
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

describe('ConclaveClient against a real agent', () => {
  let dev: DevAgent;
  let client: ConclaveClient;
  beforeAll(async () => {
    dev = await startDevAgent();
    client = dev.client;
  });
  afterAll(async () => {
    await dev.stop();
  });

  it('writes, reads, lists and deletes keys, whatever characters they hold', async () => {
    const odd = 'client/odd key?#%&+.txt';
    expect(await client.kvPut({ key: odd, value: 'one', flags: 42 })).toBe(true);
    expect(await client.kvPut({ key: 'client/a', value: new Uint8Array([0, 255]) })).toBe(true);
    const got = await client.kvGet(odd);
    expect(got.value?.key).toBe(odd);
    expect(text(got.value?.value)).toBe('one');
    expect(got.value?.flags).toBe(42);
    expect(got.meta.index).toBeGreaterThan(0);
    expect(got.meta.knownLeader).toBe(true);
    expect([...((await client.kvGet('client/a')).value?.value ?? [])]).toEqual([0, 255]);
    expect((await client.kvList('client/')).value.map((e) => e.key)).toEqual(['client/a', odd]);
    expect((await client.kvKeys('client/')).value).toEqual(['client/a', odd]);
    expect(await client.kvDelete({ key: 'client/', recurse: true })).toBe(true);
    expect((await client.kvGet(odd)).value).toBeNull();
    expect((await client.kvList('client/')).value).toEqual([]);
    expect((await client.kvKeys('client/')).value).toEqual([]);
  });

  it('rolls keys up to a separator', async () => {
    await client.kvPut({ key: 'sep/a/1', value: '' });
    await client.kvPut({ key: 'sep/a/2', value: '' });
    await client.kvPut({ key: 'sep/b', value: '' });
    expect((await client.kvKeys('sep/', { separator: '/' })).value).toEqual(['sep/a/', 'sep/b']);
  });

  it('reports whether a cas write or delete applied', async () => {
    await client.kvPut({ key: 'cas/k', value: 'v1' });
    const first = (await client.kvGet('cas/k')).value;
    expect(first).not.toBeNull();
    const index = first?.modifyIndex ?? 0;
    expect(await client.kvPut({ key: 'cas/k', value: 'v2', cas: index + 1000 })).toBe(false);
    expect(await client.kvPut({ key: 'cas/k', value: 'v2', cas: index })).toBe(true);
    expect(await client.kvDelete({ key: 'cas/k', cas: index })).toBe(false);
    expect(text((await client.kvGet('cas/k')).value?.value)).toBe('v2');
  });

  it('blocks a read until the key changes, and returns at the wait when nothing does', async () => {
    await client.kvPut({ key: 'block/k', value: 'before' });
    const { meta } = await client.kvGet('block/k');
    const waiting = client.kvGet('block/k', { index: meta.index, waitMs: 30_000 });
    await client.kvPut({ key: 'block/k', value: 'after' });
    const woken = await waiting;
    expect(text(woken.value?.value)).toBe('after');
    expect(woken.meta.index).toBeGreaterThan(meta.index);

    const started = Date.now();
    const idle = await client.kvGet('block/k', { index: woken.meta.index, waitMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(idle.meta.index).toBe(woken.meta.index);
  });

  it('ends a blocking read at once when its signal aborts', async () => {
    await client.kvPut({ key: 'abort/k', value: 'x' });
    const { meta } = await client.kvGet('abort/k');
    const controller = new AbortController();
    const waiting = client.kvGet('abort/k', { index: meta.index, waitMs: 60_000, signal: controller.signal });
    controller.abort(new Error('stop waiting'));
    await expect(waiting).rejects.toThrow('stop waiting');
  });

  it('runs transactions and reports failed checks as values', async () => {
    const ok = await client.txn([
      { verb: 'set', key: '{t}/a', value: Buffer.from('1') },
      { verb: 'set', key: '{t}/b', value: Buffer.from('2'), flags: 7 },
      { verb: 'get', key: '{t}/a' },
    ]);
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(ok.results.map((r) => r.key)).toEqual(['{t}/a', '{t}/b', '{t}/a']);
    const failed = await client.txn([
      { verb: 'check-index', key: '{t}/a', index: 999_999 },
      { verb: 'set', key: '{t}/b', value: Buffer.from('3') },
    ]);
    expect(failed.ok).toBe(false);
    if (!failed.ok) expect(failed.errors[0]?.opIndex).toBe(0);
    expect(text((await client.kvGet('{t}/b')).value?.value)).toBe('2');
  });

  it('creates, renews, reads and destroys sessions; a destroyed session renews to null', async () => {
    const id = await client.sessionCreate({ name: 'test', ttlSeconds: 15, lockDelayMs: 0 });
    const info = (await client.sessionInfo(id)).value;
    expect(info).toMatchObject({ id, name: 'test', ttlSeconds: 15, behavior: 'release', lockDelayMs: 0 });
    expect((await client.sessionRenew(id))?.id).toBe(id);
    expect(await client.kvPut({ key: 'sess/lock', value: 'me', acquire: id })).toBe(true);
    expect((await client.kvGet('sess/lock')).value?.session).toBe(id);
    expect(await client.sessionDestroy(id)).toBe(true);
    expect(await client.sessionRenew(id)).toBeNull();
    expect((await client.kvGet('sess/lock')).value?.session).toBeNull();
  });

  it('describes the cluster: leader, peers, raft configuration, agent/self', async () => {
    const raftAddr = `${dev.agent.raftAddress.host}:${dev.agent.raftAddress.port}`;
    expect(await client.statusLeader()).toBe(raftAddr);
    expect(await client.statusPeers()).toEqual([raftAddr]);
    const config = await client.raftConfiguration({ groupId: 3 });
    expect(config.servers).toEqual([
      { id: 'dev', node: 'dev', address: raftAddr, leader: true, voter: true },
    ]);
    const self = await client.agentSelf();
    expect(self).toMatchObject({ nodeId: 'dev', raftAddr, clusterId: 'conclave' });
    expect(self.groups.map((g) => [g.groupId, g.role, g.leaderId])).toEqual([
      [0, 'leader', 'dev'],
      [1, 'leader', 'dev'],
      [2, 'leader', 'dev'],
      [3, 'leader', 'dev'],
    ]);
  });

  it("carries the server's code, message and advice on a refused request", async () => {
    const error = await rejection(client.kvPut({ key: '/leading-slash', value: 'x' }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.httpStatus).toBe(400);
    expect(error.message).toMatch(/must not begin with '\/'/);
    expect(error.advice).toBe(errorCatalogue.BAD_REQUEST.advice);
    const group = await rejection(client.raftConfiguration({ groupId: 99 }));
    expect(group.code).toBe('BAD_REQUEST');
  });
});

describe('ConclaveClient retries and limits', () => {
  const fast = { retryDelayMs: 1, retryDelayMaxMs: 2 };

  it('fails with CONNECTION_FAILED after its bounded attempts when nothing listens', async () => {
    const client = new ConclaveClient({ address: `127.0.0.1:${await closedPort()}`, limits: fast });
    const error = await rejection(client.statusLeader());
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(error.httpStatus).toBeNull();
    expect(error.advice).toMatch(/--http-addr/);
    await client.close();
  });

  it('retries a write the server refused before applying it, until it succeeds', async () => {
    const server = await fakeServer((_request, response, count) => {
      if (count < 3) return sendCode(response, { status: 503, code: 'NO_LEADER' });
      response.writeHead(200, { 'content-type': 'application/json' }).end('true');
    });
    const client = new ConclaveClient({ address: server.address, limits: fast });
    expect(await client.kvPut({ key: 'k', value: 'v', cas: 5 })).toBe(true);
    expect(server.requests()).toBe(3);
    await client.close();
    await server.close();
  });

  it('never retries a write whose outcome is unknown, and stops at attemptsMax for reads', async () => {
    const server = await fakeServer((_request, response) =>
      sendCode(response, { status: 504, code: 'TIMEOUT' }),
    );
    const client = new ConclaveClient({ address: server.address, limits: { ...fast, attemptsMax: 3 } });
    const write = await rejection(client.kvPut({ key: 'k', value: 'v', cas: 5 }));
    expect(write).toMatchObject({ code: 'TIMEOUT', advice: 'scripted advice', httpStatus: 504 });
    expect(server.requests()).toBe(1);
    await rejection(client.kvGet('k'));
    expect(server.requests()).toBe(1 + 3);
    await client.close();
    await server.close();
  });

  it('gives up on an attempt at its deadline', async () => {
    // Never answers: the request hangs until the client's deadline.
    const server = await fakeServer(() => undefined);
    const client = new ConclaveClient({
      address: server.address,
      limits: { ...fast, attemptsMax: 1, requestTimeoutMs: 200 },
    });
    const error = await rejection(client.statusPeers());
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toMatch(/no answer within 200 ms/);
    await client.close();
    await server.close();
  });

  it('refuses an answer over responseBytesMax, and one that is not what the API sends', async () => {
    const server = await fakeServer((request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(request.url === '/v1/status/peers' ? JSON.stringify(['x'.repeat(5000)]) : '{"ID": 7}');
    });
    const client = new ConclaveClient({
      address: server.address,
      limits: { ...fast, responseBytesMax: 1024 },
    });
    const large = await rejection(client.statusPeers());
    expect(large.code).toBe('BAD_RESPONSE');
    expect(large.message).toMatch(/responseBytesMax/);
    const malformed = await rejection(client.sessionCreate());
    expect(malformed.code).toBe('BAD_RESPONSE');
    await client.close();
    await server.close();
  });

  it('fails over to the next server when one cannot be reached, and stays there', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const server = await fakeServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('true');
    });
    const client = new ConclaveClient({ addresses: [dead, server.address], limits: fast });
    // A write is retried on another server only because the first never received it.
    expect(await client.kvPut({ key: 'k', value: 'v', cas: 5 })).toBe(true);
    expect(client.baseUrl).toBe(`http://${server.address}`);
    expect(await client.kvDelete({ key: 'k' })).toBe(true);
    expect(server.requests()).toBe(2);
    await client.close();
    await server.close();
  });

  it('moves on from a server that refuses with NO_LEADER, and never sends an unknown-outcome write twice', async () => {
    const refusing = await fakeServer((_request, response) =>
      sendCode(response, { status: 503, code: 'NO_LEADER' }),
    );
    const timingOut = await fakeServer((_request, response) =>
      sendCode(response, { status: 504, code: 'TIMEOUT' }),
    );
    const healthy = await fakeServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('true');
    });
    const failover = new ConclaveClient({ addresses: [refusing.address, healthy.address], limits: fast });
    expect(await failover.kvPut({ key: 'k', value: 'v' })).toBe(true);
    expect([refusing.requests(), healthy.requests()]).toEqual([1, 1]);
    const unknown = new ConclaveClient({ addresses: [timingOut.address, healthy.address], limits: fast });
    expect((await rejection(unknown.kvPut({ key: 'k', value: 'v' }))).code).toBe('TIMEOUT');
    expect([timingOut.requests(), healthy.requests()]).toEqual([1, 1]);
    for (const c of [failover, unknown]) await c.close();
    for (const s of [refusing, timingOut, healthy]) await s.close();
  });

  it('tries every server, then reports the last failure, when none can be reached', async () => {
    const addresses = [`127.0.0.1:${await closedPort()}`, `127.0.0.1:${await closedPort()}`];
    const client = new ConclaveClient({ addresses, limits: { ...fast, attemptsMax: 4 } });
    const error = await rejection(client.kvGet('k'));
    expect(error.code).toBe('CONNECTION_FAILED');
    expect(() => new ConclaveClient({ addresses: [] })).toThrow(/between 1 and 64 server addresses/);
    await client.close();
  });

  it('ends a write at once when its signal is aborted', async () => {
    // Never answers: only the abort can end the call.
    const server = await fakeServer(() => undefined);
    const client = new ConclaveClient({ address: server.address, limits: fast });
    const controller = new AbortController();
    const write = client.kvPut({ key: 'k', value: 'v', signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(write).rejects.toThrow('caller gave up');
    await client.close();
    await server.close();
  });

  it('refuses an address that is not host:port', () => {
    expect(() => new ConclaveClient({ address: 'http://127.0.0.1:8500/v1' })).toThrow(ConclaveClientError);
    expect(() => new ConclaveClient({ address: '127.0.0.1' })).toThrow(/host:port/);
  });
});
