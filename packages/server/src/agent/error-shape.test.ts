import { connect, type Socket } from 'node:net';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import { type SingleServer, singleServerPerTest } from './testing/single-server.js';

/**
 * Every error the agent's HTTP endpoint sends, fastify's own refusals included, is the
 * catalogue's `{code, message, advice}` with the code's status, and nothing is written.
 */

const groupCount = 2;

const lastIndexes = (host: MultiRaftHost<FsmResult>) =>
  [...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex);

interface ErrorBody {
  code: keyof typeof errorCatalogue;
  message: string;
  advice: string;
}

/** The body is exactly {code, message, advice}, with the catalogue's status and advice. */
function expectCatalogued(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  code: keyof typeof errorCatalogue,
  message: RegExp,
): void {
  const body = JSON.parse(response.body) as ErrorBody;
  expect(response.headers['content-type']).toBe('application/json');
  expect(Object.keys(body).sort()).toEqual(['advice', 'code', 'message']);
  expect(body.code).toBe(code);
  expect(response.statusCode).toBe(errorCatalogue[code].status);
  expect(body.advice).toBe(errorCatalogue[code].advice);
  expect(body.message).toMatch(message);
}

async function expectRefused(
  server: SingleServer,
  request: InjectOptions,
  expected: { code: keyof typeof errorCatalogue; message: RegExp },
): Promise<void> {
  const before = lastIndexes(server.host);
  const response = await server.app.inject(request);
  expectCatalogued(response, expected.code, expected.message);
  expect(lastIndexes(server.host), 'nothing was written').toEqual(before);
}

describe("fastify's own refusals, in the catalogue's shape", () => {
  const setup = singleServerPerTest({ groupCount });

  it('answers a path that is not valid percent-encoded UTF-8 with 400 BAD_REQUEST', async () => {
    const server = await setup();
    for (const method of ['GET', 'PUT', 'DELETE'] as const) {
      await expectRefused(
        server,
        { method, url: '/v1/kv/%E0%A4%A', ...(method === 'PUT' ? { payload: 'v' } : {}) },
        { code: 'BAD_REQUEST', message: /path "\/v1\/kv\/%E0%A4%A" is not valid percent-encoded UTF-8/ },
      );
    }
    await expectRefused(
      server,
      { method: 'GET', url: '/v1/nowhere/%FF' },
      { code: 'BAD_REQUEST', message: /not valid percent-encoded UTF-8/ },
    );
  });

  it('answers a path parameter over its length with 400 BAD_REQUEST', async () => {
    const server = await setup();
    await expectRefused(
      server,
      { method: 'GET', url: `/v1/operator/groups/${'1'.repeat(200)}` },
      { code: 'BAD_REQUEST', message: /parameter of the path .* longer than any this route takes/ },
    );
  });

  it('answers a malformed Content-Type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const server = await setup();
    for (const url of ['/v1/kv/k', '/v1/txn', '/v1/session/create', '/v1/operator/autopilot/configuration']) {
      await expectRefused(
        server,
        { method: 'PUT', url, payload: '{}', headers: { 'content-type': ';;;' } },
        { code: 'UNSUPPORTED_MEDIA_TYPE', message: /Content-Type header ";;;" is not a media type/ },
      );
    }
  });

  it('answers a transaction that is not JSON, or a forwarded call that is not, with 400 BAD_REQUEST', async () => {
    const server = await setup();
    for (const headers of [{}, { 'content-type': 'application/json' }]) {
      await expectRefused(
        server,
        { method: 'PUT', url: '/v1/txn', payload: '[{"KV": {"Verb": "set", "Key": "k"', headers },
        { code: 'BAD_REQUEST', message: /failed to parse body/ },
      );
    }
    await expectRefused(
      server,
      {
        method: 'POST',
        url: '/v1/internal/group/0/call',
        payload: '{"kind": ',
        headers: { 'content-type': 'application/json' },
      },
      { code: 'BAD_REQUEST', message: /the body is not valid JSON/ },
    );
  });

  it('answers a body over a non-KV route limit with 413 BODY_TOO_LARGE naming the limit, not kvValueBytesMax', async () => {
    const server = await setup();
    await expectRefused(
      server,
      { method: 'PUT', url: '/v1/session/create', payload: Buffer.alloc(64 * 1024 + 1, 32) },
      {
        code: 'BODY_TOO_LARGE',
        message: /larger than 65536 bytes, the most PUT \/v1\/session\/create takes/,
      },
    );
    await expectRefused(
      server,
      {
        method: 'PUT',
        url: '/v1/operator/autopilot/configuration',
        payload: Buffer.alloc(16 * 1024 + 1, 32),
      },
      { code: 'BODY_TOO_LARGE', message: /the most PUT \/v1\/operator\/autopilot\/configuration takes/ },
    );
    await expectRefused(
      server,
      {
        method: 'POST',
        url: '/v1/internal/group/0/call',
        payload: Buffer.alloc(8 * 1024 * 1024 + 1),
        headers: { 'content-type': 'application/x-msgpack' },
      },
      { code: 'BODY_TOO_LARGE', message: /larger than 8388608 bytes/ },
    );
  });

  it('answers a large body sent to no route with 404 ROUTE_NOT_FOUND', async () => {
    const server = await setup();
    await expectRefused(
      server,
      { method: 'PUT', url: '/v1/nowhere', payload: Buffer.alloc(8 * 1024 * 1024 + 1) },
      { code: 'ROUTE_NOT_FOUND', message: /no route PUT \/v1\/nowhere/ },
    );
  });

  it("answers a missing key on the leader-only path with 404 KEY_NOT_FOUND and the catalogue's advice", async () => {
    const server = await setup();
    await expectRefused(
      server,
      { method: 'GET', url: '/v1/internal/kv/missing?mode=stale' },
      { code: 'KEY_NOT_FOUND', message: /no key missing/ },
    );
  });

  it('answers a body that is shorter than its Content-Length with 400 BAD_REQUEST', async () => {
    const server = await setup();
    await expectRefused(
      server,
      { method: 'PUT', url: '/v1/kv/k', payload: 'abc', headers: { 'content-length': '10' } },
      { code: 'BAD_REQUEST', message: /not as long as its Content-Length/ },
    );
  });
});

/** Send raw bytes to a listening server and read what it answers until it closes. */
async function exchange(port: number, send: (socket: Socket) => Promise<void> | void): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // The server may close first, resetting the connection under an unread request.
  socket.on('error', () => {});
  await send(socket);
  await closed;
  return Buffer.concat(chunks).toString('latin1');
}

/** Each HTTP/1.1 response in the text: its status, headers and body (by Content-Length). */
function parseResponses(text: string) {
  const responses: { statusCode: number; headers: Record<string, string>; body: string }[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(end + 4, end + 4 + length);
    responses.push({ statusCode: Number(statusLine.split(' ')[1]), headers, body });
    rest = rest.slice(end + 4 + length);
  }
  return responses;
}

async function listen(server: SingleServer): Promise<number> {
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const address = server.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  return address.port;
}

const requestWithHeader = (bytes: number) =>
  `GET /v1/kv/k HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(bytes)}\r\nConnection: close\r\n\r\n`;

describe("Node's refusals before fastify, in the catalogue's shape", () => {
  const setup = singleServerPerTest({ groupCount });
  const roomy = singleServerPerTest({ groupCount, config: { httpHeaderBytesMax: '64KiB' } });

  it('answers headers over httpHeaderBytesMax with 431 HEADERS_TOO_LARGE, and takes them once it is raised', async () => {
    const port = await listen(await setup());
    const [refused] = parseResponses(await exchange(port, (s) => void s.write(requestWithHeader(20_000))));
    expect(refused).toBeDefined();
    if (refused !== undefined) {
      expectCatalogued(refused, 'HEADERS_TOO_LARGE', /larger than httpHeaderBytesMax \(16384 bytes\)/);
    }
    const raisedPort = await listen(await roomy());
    const [taken] = parseResponses(
      await exchange(raisedPort, (s) => void s.write(requestWithHeader(20_000))),
    );
    // The key does not exist: Consul's bare 404, past the header check.
    expect(taken?.statusCode).toBe(404);
  });

  it('answers a request that is not HTTP with 400 BAD_REQUEST', async () => {
    const port = await listen(await setup());
    const [refused] = parseResponses(await exchange(port, (s) => void s.write('HELLO\r\n\r\n')));
    expect(refused).toBeDefined();
    if (refused !== undefined) expectCatalogued(refused, 'BAD_REQUEST', /not valid HTTP\/1\.1 \(HPE_/);
  });

  it('answers a request that timed out in the parser with 408 REQUEST_TIMEOUT', async () => {
    const { app } = await setup();
    await app.ready();
    let written = '';
    const socket = {
      destroyed: false,
      writable: true,
      write: (text: string) => {
        written += text;
        return true;
      },
      destroy: () => {},
    };
    const timeout = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    app.server.emit('clientError', timeout, socket);
    const [refused] = parseResponses(written);
    expect(refused).toBeDefined();
    if (refused !== undefined) expectCatalogued(refused, 'REQUEST_TIMEOUT', /did not arrive whole in time/);
  });

  it('answers a request that arrives while the server closes with 503 SHUTTING_DOWN', async () => {
    const server = await setup();
    const { app, service } = server;
    // A request is in flight (a blocking query) so the connection stays open while the
    // app closes; a second one pipelined behind it arrives once closing has begun.
    let arrived = (): void => {};
    const inFlight = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let closingBegan = (): void => {};
    const closing = new Promise<void>((resolve) => {
      closingBegan = resolve;
    });
    app.addHook('onRequest', (_request, _reply, done) => {
      arrived();
      done();
    });
    app.addHook('preClose', (done) => {
      closingBegan();
      done();
    });
    const { index } = await service.service.kvPut({
      key: 'k',
      value: new Uint8Array([1]),
      flags: 0,
      cas: null,
      acquire: null,
      release: null,
    });
    const port = await listen(server);
    let closed: Promise<void> = Promise.resolve();
    const text = await exchange(port, async (socket) => {
      socket.write(`GET /v1/kv/k?index=${index}&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n`);
      await inFlight;
      closed = app.close();
      await closing;
      socket.write('GET /v1/kv/k HTTP/1.1\r\nHost: x\r\n\r\n');
      // Wake the blocking query: its answer goes first, then the refusal, then the close.
      await service.service.kvPut({
        key: 'k',
        value: new Uint8Array([2]),
        flags: 0,
        cas: null,
        acquire: null,
        release: null,
      });
    });
    await closed;
    const [first, second] = parseResponses(text);
    expect(first?.statusCode).toBe(200);
    expect(second).toBeDefined();
    if (second !== undefined) expectCatalogued(second, 'SHUTTING_DOWN', /shutting down/);
  });
});
