import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArchiveStream } from '../archive/index.js';
import { decodeSnapshot } from '../fsm/snapshot-codec.js';
import { SnapshotService } from '../service/snapshot.js';
import { eventually, startTestCluster, type TestCluster } from '../service/testing/cluster.js';
import { sendError } from './send-error.js';
import { registerSnapshotRoutes, snapshotUrl } from './snapshot-routes.js';

/** A small compressed limit, so that going over it needs no large test data. */
const archiveBytesMax = 64 * 1024;

let cluster: TestCluster;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  cluster = await startTestCluster({ size: 1, groupCount: 2 });
  await eventually(() => [0, 1].every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
  const server = cluster.servers[0];
  if (server === undefined) throw new Error('no server');
  const snapshots = new SnapshotService({
    host: server.host,
    caller: server.runtime.router,
    fsm: (g) => server.machines.fsm(g),
    limits: { archiveBytesMax },
  });
  app = Fastify();
  app.setErrorHandler((error, _request, reply) => sendError(reply, error));
  registerSnapshotRoutes(app, { snapshots, clusterId: 'solo' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const bound = app.server.address();
  if (typeof bound !== 'object' || bound === null) throw new Error('fastify did not bind');
  base = `http://127.0.0.1:${bound.port}`;
  for (let i = 0; i < 50; i++) {
    await server.runtime.service.kvPut({
      key: `k/${i}`,
      value: new TextEncoder().encode(`v${i}`),
      flags: 0,
      cas: null,
      acquire: null,
      release: null,
    });
  }
}, 30_000);

afterAll(async () => {
  await app.close();
  await cluster.close();
});

async function save(): Promise<Buffer> {
  const response = await request(`${base}${snapshotUrl}`);
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('application/x-gzip');
  return Buffer.from(await response.body.arrayBuffer());
}

async function restore(body: Buffer | Readable, headers: Record<string, string> = {}) {
  const response = await request(`${base}${snapshotUrl}`, { method: 'PUT', body, headers });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

describe('the snapshot routes over HTTP', () => {
  it('streams an archive out and a chunked upload of it back in', async () => {
    const gz = await save();
    const meta = await readArchiveStream(Readable.from([gz]), { archiveBytesMax, groupCount: 2 });
    expect(meta.clusterId).toBe('solo');
    // A stream body goes out chunked, without a content-length: the route reads it as it comes.
    const chunks = Readable.from(
      Array.from({ length: Math.ceil(gz.length / 100) }, (_, i) => gz.subarray(i * 100, (i + 1) * 100)),
    );
    const restored = await restore(chunks, { 'content-type': 'application/x-gzip' });
    expect(restored.status).toBe(200);
    expect(restored.body.clusterId).toBe('solo');
    expect((restored.body.groups as { keys: number }[]).map((g) => g.keys)).toEqual(
      meta.groups.map((g) => g.keys),
    );
  });

  it('refuses an empty body', async () => {
    for (const headers of [{}, { 'content-type': 'application/x-gzip' }]) {
      const refused = await restore(Buffer.alloc(0), headers);
      expect([refused.status, refused.body.code]).toEqual([400, 'SNAPSHOT_ARCHIVE_INVALID']);
    }
  });

  it('refuses a body over archiveBytesMax, and the client gets the answer', async () => {
    const refused = await restore(Buffer.alloc(archiveBytesMax * 4, 1));
    expect([refused.status, refused.body.code]).toEqual([400, 'SNAPSHOT_ARCHIVE_INVALID']);
    expect(refused.body.message).toContain('archiveBytesMax');
  });

  it('answers a body that is no archive before reading it all', async () => {
    // Refused at its first bytes; the unread rest must not cost the client its answer.
    const refused = await restore(Buffer.alloc(archiveBytesMax / 2, 7));
    expect([refused.status, refused.body.code]).toEqual([400, 'SNAPSHOT_ARCHIVE_INVALID']);
  });
});

/** What a raw HTTP/1.1 client saw: everything the server sent until it closed the connection. */
async function rawPut(options: {
  port: number;
  head: string;
  body: Buffer;
  flood?: boolean;
}): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: options.port });
  await once(socket, 'connect');
  // A reset once the answer is in is what a client still sending may see: not a failure.
  socket.on('error', () => undefined);
  socket.write(`PUT ${snapshotUrl} HTTP/1.1\r\nHost: 127.0.0.1\r\n${options.head}\r\n`);
  socket.write(options.body);
  if (options.flood === true) {
    // Keeps sending whatever the server answers, as a client that does not read would.
    const more = () => {
      while (!socket.destroyed && socket.write(Buffer.alloc(64 * 1024, 7))) {}
    };
    socket.on('drain', more);
    more();
  }
  let received = '';
  socket.on('data', (data: Buffer) => {
    received += data.toString();
  });
  // Not once(): it would reject on the error event.
  await new Promise((resolve) => socket.on('close', resolve));
  return received;
}

const jsonOf = (received: string) =>
  JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as {
    code: string;
    message: string;
  };

describe('a stalled or failed upload', () => {
  const bodyIdleMs = 300;
  let stalledApp: FastifyInstance;
  let port: number;

  beforeAll(async () => {
    const server = cluster.servers[0];
    if (server === undefined) throw new Error('no server');
    const snapshots = new SnapshotService({
      host: server.host,
      caller: server.runtime.router,
      fsm: (g) => server.machines.fsm(g),
      limits: { archiveBytesMax, bodyIdleMs },
    });
    stalledApp = Fastify();
    stalledApp.setErrorHandler((error, _request, reply) => sendError(reply, error));
    registerSnapshotRoutes(stalledApp, {
      snapshots,
      clusterId: 'solo',
      drainLimits: { drainBytesMax: 256 * 1024, drainMs: 500 },
    });
    await stalledApp.listen({ host: '127.0.0.1', port: 0 });
    const bound = stalledApp.server.address();
    if (typeof bound !== 'object' || bound === null) throw new Error('fastify did not bind');
    port = bound.port;
  });

  afterAll(async () => {
    await stalledApp.close();
  });

  it('refuses a body that stops sending after bodyIdleMs, aborts its staging, and the next restore runs', async () => {
    const gz = await save();
    const half = gz.subarray(0, Math.floor(gz.length / 2));
    const received = await rawPut({
      port,
      head: `Content-Length: ${gz.length}\r\nContent-Type: application/x-gzip\r\n`,
      body: half,
    });
    expect(received).toMatch(/^HTTP\/1\.1 400 /u);
    const refused = jsonOf(received);
    expect(refused.code).toBe('SNAPSHOT_ARCHIVE_INVALID');
    expect(refused.message).toContain('bodyIdleMs');
    const server = cluster.servers[0];
    for (const g of [0, 1]) {
      expect(
        decodeSnapshot(server?.machines.fsm(g).snapshot() ?? new Uint8Array()).restoreStaging,
      ).toBeNull();
    }
    // Not pinned: the server runs the next restore.
    const response = await request(`http://127.0.0.1:${port}${snapshotUrl}`, { method: 'PUT', body: gz });
    expect(response.statusCode).toBe(200);
    await response.body.dump();
  });

  it('answers a refused body and then cuts the connection, whether the client stalls or floods', async () => {
    const head = `Content-Length: ${1024 * 1024 * 1024}\r\nContent-Type: application/x-gzip\r\n`;
    for (const flood of [false, true]) {
      // Not gzip: refused at its first bytes, with most of the declared body unsent.
      const received = await rawPut({ port, head, body: Buffer.alloc(1024, 7), flood });
      expect(received, `flood: ${flood}`).toMatch(/^HTTP\/1\.1 400 /u);
      expect(jsonOf(received).code).toBe('SNAPSHOT_ARCHIVE_INVALID');
    }
  });
});
