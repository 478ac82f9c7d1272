import { describe, expect, it } from 'vitest';
import { captureLog, logLevels } from '../service/testing/log-lines.js';
import { startSingleServer } from './testing/single-server.js';

/** Serve a few requests (a write, a read, a miss) through inject(); the HTTP lines logged. */
async function serveRequests(level: 'info' | 'debug') {
  const { logger, lines } = captureLog(level);
  const server = await startSingleServer({ logger });
  // A route that fails as the server would when it cannot serve (no leader, shutting down).
  server.app.get('/test/unavailable', (_request, reply) => reply.code(503).send({ code: 'NO_LEADER' }));
  // A forwarded call between servers refused during a leader change: the caller retries.
  server.app.get('/v1/internal/test/moved', (_request, reply) =>
    reply.code(503).send({ code: 'NOT_LEADER' }),
  );
  try {
    expect((await server.app.inject({ method: 'PUT', url: '/v1/kv/a', payload: 'v' })).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'GET', url: '/v1/kv/a' })).statusCode).toBe(200);
    expect((await server.app.inject({ method: 'GET', url: '/v1/kv/missing' })).statusCode).toBe(404);
    expect((await server.app.inject({ method: 'GET', url: '/test/unavailable' })).statusCode).toBe(503);
    expect((await server.app.inject({ method: 'GET', url: '/v1/internal/test/moved' })).statusCode).toBe(503);
  } finally {
    await server.stop();
  }
  return lines.filter((line) => line.component === 'http');
}

describe('HTTP request logs', () => {
  it("logs no line for a served request at info, only a client's request the server failed (5xx) at warn", async () => {
    const lines = await serveRequests('info');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: logLevels.warn,
      msg: 'request failed',
      method: 'GET',
      url: '/test/unavailable',
      statusCode: 503,
    });
  });

  it('logs one line per request at debug, with method, URL, status and time', async () => {
    const lines = await serveRequests('debug');
    expect(lines.map((line) => [line.level, line.method, line.url, line.statusCode])).toEqual([
      [logLevels.debug, 'PUT', '/v1/kv/a', 200],
      [logLevels.debug, 'GET', '/v1/kv/a', 200],
      [logLevels.debug, 'GET', '/v1/kv/missing', 404],
      [logLevels.warn, 'GET', '/test/unavailable', 503],
      [logLevels.debug, 'GET', '/v1/internal/test/moved', 503],
    ]);
    for (const line of lines) {
      expect(typeof line.ms).toBe('number');
      expect(typeof line.reqId).toBe('string');
    }
  });
});
