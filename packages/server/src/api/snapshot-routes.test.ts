import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArchiveStream } from '../archive/index.js';
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
