import { createServer, type Server } from 'node:net';
import { RaftError } from '@conclave/raft';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import type { GroupCall } from './calls.js';
import {
  defaultForwardLimits,
  ForwardClient,
  forwardTimeoutMs,
  internalCallPath,
  PeerUnreachableError,
} from './forward-client.js';

const apply: GroupCall = {
  kind: 'apply',
  command: { type: 'kv', op: { verb: 'set', key: 'k', value: new Uint8Array([1]), flags: 0 } },
};
const read: GroupCall = {
  kind: 'read',
  query: { kind: 'get', key: 'k' },
  read: { consistency: 'default', maxStaleMs: null, block: null },
};

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A peer that reads the whole request, then drops the connection without answering. */
async function droppingPeer(): Promise<{ host: string; port: number }> {
  const app = Fastify();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.post('/v1/internal/group/:groupId/call', async (request) => {
    request.raw.socket.destroy();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => app.close());
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return { host: '127.0.0.1', port: address.port };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<{ host: string; port: number }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { host: '127.0.0.1', port: address.port };
}

describe('ForwardClient', () => {
  it('reports a write whose connection dropped after sending as an unknown outcome, never as retryable', async () => {
    const client = new ForwardClient();
    closers.push(() => client.close());
    const to = await droppingPeer();
    const write = client.call({ to, groupId: 0, call: apply });
    await expect(write).rejects.toBeInstanceOf(ConclaveError);
    await expect(write).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(/outcome is unknown/),
    });
    await expect(client.call({ to, groupId: 0, call: read })).rejects.toMatchObject({
      code: 'FORWARD_FAILED',
    });
  });

  it('reports a refused connection as unreachable: the call was never sent, so it may be retried', async () => {
    const client = new ForwardClient();
    closers.push(() => client.close());
    await expect(client.call({ to: await closedPort(), groupId: 0, call: apply })).rejects.toBeInstanceOf(
      PeerUnreachableError,
    );
  });

  it('refuses with OVERLOADED beyond callsInFlightMax instead of queueing without bound', async () => {
    const client = new ForwardClient({ ...defaultForwardLimits, callsInFlightMax: 1 });
    closers.push(() => client.close());
    const to = await droppingPeer();
    const first = client.call({ to, groupId: 0, call: read });
    await expect(client.call({ to, groupId: 0, call: read })).rejects.toMatchObject({ code: 'OVERLOADED' });
    await expect(first).rejects.toMatchObject({ code: 'FORWARD_FAILED' });
    // The slot is free again once the first call ended.
    await expect(client.call({ to, groupId: 0, call: read })).rejects.toMatchObject({
      code: 'FORWARD_FAILED',
    });
  });

  it('turns a peer catalogue error back into the same typed error, keeping the leader hint', async () => {
    const app = Fastify();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    app.post(internalCallPath(3), async (_request, reply) =>
      reply.code(503).send({ code: 'NOT_LEADER', message: 'not me', leaderId: 's2' }),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    closers.push(() => app.close());
    const address = app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    const client = new ForwardClient();
    closers.push(() => client.close());
    const answer = client.call({ to: { host: '127.0.0.1', port: address.port }, groupId: 3, call: apply });
    await expect(answer).rejects.toBeInstanceOf(RaftError);
    await expect(answer).rejects.toMatchObject({ code: 'NOT_LEADER', leaderId: 's2' });
  });
});

describe('forwardTimeoutMs', () => {
  it('gives a blocking query its own wait plus slack, so a raised --blocking-wait-max is not cut short', () => {
    const blocking = (waitMs: number): GroupCall => ({
      kind: 'read',
      query: { kind: 'get', key: 'k' },
      read: { consistency: 'default', maxStaleMs: null, block: { index: 5, waitMs } },
    });
    const hourWithJitter = 60 * 60_000 * (1 + 1 / 16);
    expect(forwardTimeoutMs(blocking(hourWithJitter), defaultForwardLimits)).toBeGreaterThan(hourWithJitter);
    expect(forwardTimeoutMs(blocking(1000), defaultForwardLimits)).toBeGreaterThan(1000);
    expect(forwardTimeoutMs(apply, defaultForwardLimits)).toBe(defaultForwardLimits.callTimeoutMs);
  });
});
