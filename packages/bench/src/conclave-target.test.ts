import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ConclaveTarget } from './conclave-target.js';

interface Seen {
  readonly server: number;
  readonly method: string;
  readonly url: string;
  readonly body: string;
}

/** Fake Consul KV servers on loopback that record requests and answer with `reply`. */
async function fakeServers(
  count: number,
  reply: (request: IncomingMessage) => { status: number; body: string },
): Promise<{ urls: string[]; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const servers: Server[] = [];
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({
          server: i,
          method: request.method ?? '',
          url: request.url ?? '',
          body: Buffer.concat(chunks).toString(),
        });
        const { status, body } = reply(request);
        response.writeHead(status).end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    urls.push(`http://127.0.0.1:${address.port}`);
    servers.push(server);
  }
  const close = () =>
    Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(
      () => undefined,
    );
  return { urls, seen, close };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function target(urls: string[]): ConclaveTarget {
  const t = new ConclaveTarget({ urls, connectionsPerServer: 4, requestTimeoutMs: 5000 });
  closers.push(() => t.close());
  return t;
}

describe('ConclaveTarget', () => {
  it("speaks Consul's KV API: PUT the raw value, GET with the consistency's query flag", async () => {
    const fake = await fakeServers(3, (request) =>
      request.method === 'PUT' ? { status: 200, body: 'true' } : { status: 200, body: '[{"Key":"k"}]' },
    );
    closers.push(fake.close);
    const conclave = target(fake.urls);
    expect(conclave.serverCount).toBe(3);
    await conclave.put({ server: 2, key: 'bench-000001', value: new TextEncoder().encode('hello') });
    await conclave.get({ server: 0, key: 'bench-000001', consistency: 'default' });
    await conclave.get({ server: 1, key: 'bench-000001', consistency: 'consistent' });
    await conclave.get({ server: 2, key: 'bench-000001', consistency: 'stale' });
    expect(fake.seen).toEqual([
      { server: 2, method: 'PUT', url: '/v1/kv/bench-000001', body: 'hello' },
      { server: 0, method: 'GET', url: '/v1/kv/bench-000001', body: '' },
      { server: 1, method: 'GET', url: '/v1/kv/bench-000001?consistent', body: '' },
      { server: 2, method: 'GET', url: '/v1/kv/bench-000001?stale', body: '' },
    ]);
  });

  it('fails a request the server refuses, a missing key, and a put not answered true', async () => {
    const fake = await fakeServers(1, (request) => {
      if (request.url?.includes('busy')) return { status: 429, body: '{"code":"OVERLOADED"}' };
      if (request.method === 'PUT') return { status: 200, body: 'false' };
      return { status: 404, body: '' };
    });
    closers.push(fake.close);
    const conclave = target(fake.urls);
    const value = new Uint8Array(4);
    await expect(conclave.put({ server: 0, key: 'busy', value })).rejects.toThrow(/HTTP 429.*OVERLOADED/);
    await expect(conclave.put({ server: 0, key: 'k', value })).rejects.toThrow(/HTTP 200 false/);
    await expect(conclave.get({ server: 0, key: 'k', consistency: 'stale' })).rejects.toThrow(/HTTP 404/);
    await expect(conclave.get({ server: 1, key: 'k', consistency: 'stale' })).rejects.toThrow(/no server 1/);
  });
});
