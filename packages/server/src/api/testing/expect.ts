import type { FastifyInstance, InjectOptions } from 'fastify';
import { expect } from 'vitest';
import type { RecordingService } from './recording-service.js';

/**
 * Send a request the API must refuse and check the refusal: the status, the catalogue code,
 * a message naming the culprit, and that the service was never called (nothing written).
 */
export async function expectRefused(
  target: { app: FastifyInstance; service: RecordingService },
  request: InjectOptions,
  expected: { status: number; code: string; message: RegExp },
): Promise<void> {
  const response = await target.app.inject(request);
  expect(response.statusCode, `${request.method} ${request.url}`).toBe(expected.status);
  expect(response.headers['content-type']).toBe('application/json');
  const body = response.json<{ code: string; message: string; advice: string }>();
  expect(body.code).toBe(expected.code);
  expect(body.message).toMatch(expected.message);
  expect(body.advice.length).toBeGreaterThan(0);
  expect(target.service.calls).toEqual([]);
}
