import { describe, expect, it } from 'vitest';
import { defaultApiLimits } from '../service/types.js';
import { parseReadRequest } from './read-request.js';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';
import { readOf } from './testing/recording-service.js';

const limits = defaultApiLimits;
const parse = (query: Record<string, string>, random = () => 0) =>
  parseReadRequest(query, { limits, random });

describe('consistency modes', () => {
  it('reads default, ?consistent and ?stale (with or without a value)', () => {
    expect(parse({})).toEqual({ consistency: 'default', maxStaleMs: null, block: null });
    expect(parse({ consistent: '' }).consistency).toBe('consistent');
    expect(parse({ stale: '' }).consistency).toBe('stale');
    expect(parse({ stale: 'false' }).consistency).toBe('stale');
  });

  it('takes ?max_stale as milliseconds, and a positive one alone means stale', () => {
    expect(parse({ stale: '', max_stale: '2s' })).toMatchObject({ consistency: 'stale', maxStaleMs: 2000 });
    expect(parse({ max_stale: '1500ms' })).toMatchObject({ consistency: 'stale', maxStaleMs: 1500 });
    expect(parse({ max_stale: '0s' })).toMatchObject({ consistency: 'default', maxStaleMs: null });
    expect(parse({ max_stale: '' })).toMatchObject({ consistency: 'default', maxStaleMs: null });
  });

  it('refuses ?consistent with ?stale or a max_stale', () => {
    expect(() => parse({ consistent: '', stale: '' })).toThrow(/conflicting semantics/);
    expect(() => parse({ consistent: '', max_stale: '5s' })).toThrow(/conflicting semantics/);
  });
});

describe('blocking queries', () => {
  it('does not block without an index, or with index 0, whatever the wait', () => {
    expect(parse({ wait: '10s' }).block).toBeNull();
    expect(parse({ index: '0', wait: '10s' }).block).toBeNull();
    expect(parse({ index: '', wait: '10s' }).block).toBeNull();
  });

  it('waits what was asked plus up to wait/16 of jitter drawn from random', () => {
    expect(parse({ index: '7', wait: '10s' }, () => 0).block).toEqual({ index: 7, waitMs: 10_000 });
    expect(parse({ index: '7', wait: '10s' }, () => 0.5).block).toEqual({ index: 7, waitMs: 10_312 });
    expect(parse({ index: '7', wait: '160ms' }, () => 0.99).block).toEqual({ index: 7, waitMs: 169 });
  });

  it('asserts that the injected random stays in [0, 1)', () => {
    expect(() => parse({ index: '1' }, () => 1)).toThrow(/random\(\) must return a number in \[0, 1\)/);
  });

  it('defaults to 5 minutes when the wait is missing, empty, zero or negative', () => {
    for (const wait of [undefined, '', '0', '-5s']) {
      const query: Record<string, string> = wait === undefined ? { index: '3' } : { index: '3', wait };
      expect(parse(query).block, String(wait)).toEqual({ index: 3, waitMs: 300_000 });
    }
  });

  it('caps the wait at 10 minutes before adding jitter', () => {
    expect(parse({ index: '3', wait: '1h' }, () => 0.5).block).toEqual({
      index: 3,
      waitMs: 600_000 + 18_750,
    });
  });

  it('reaches the service with the parsed consistency and blocking parameters', async () => {
    const { app, service } = await apiApp({
      random: () => 0.5,
      limits: { blockingWaitDefaultMs: 1000, blockingWaitMaxMs: 4000 },
      answers: { kvGet: async () => readOf(null), sessionList: async () => readOf([]) },
    });
    await app.inject({ method: 'GET', url: '/v1/kv/k?index=12&stale&max_stale=3s' });
    await app.inject({ method: 'GET', url: '/v1/kv/k?index=13&wait=1m&consistent' });
    await app.inject({ method: 'GET', url: '/v1/session/list?index=14' });
    expect(service.callsOf('kvGet')).toEqual([
      {
        key: 'k',
        consistency: 'stale',
        maxStaleMs: 3000,
        block: { index: 12, waitMs: 1031 },
        signal: expect.any(AbortSignal),
      },
      {
        key: 'k',
        consistency: 'consistent',
        maxStaleMs: null,
        block: { index: 13, waitMs: 4125 },
        signal: expect.any(AbortSignal),
      },
    ]);
    expect(service.callsOf('sessionList')).toEqual([
      {
        node: null,
        consistency: 'default',
        maxStaleMs: null,
        block: { index: 14, waitMs: 1031 },
        signal: expect.any(AbortSignal),
      },
    ]);
  });

  it('answers the effective consistency the service reports', async () => {
    const { app } = await apiApp({ answers: { kvGet: async () => readOf(null, { consistency: 'stale' }) } });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/k?stale' });
    expect(response.headers['x-consul-effective-consistency']).toBe('stale');
  });

  it.each([
    ['/v1/session/list?index=x', /index must be an unsigned integer/],
    ['/v1/session/list?index=1&wait=5', /wait must be a duration/],
    ['/v1/session/node/n1?stale&consistent', /conflicting semantics/],
    ['/v1/session/info/adf4238a-882b-9ddc-4a9d-5b6758e4159e?max_stale=1y', /max_stale must be a duration/],
  ])('refuses %s with 400 before calling the service', async (url, message) => {
    const target = await apiApp();
    await expectRefused(target, { method: 'GET', url }, { status: 400, code: 'BAD_REQUEST', message });
  });
});
