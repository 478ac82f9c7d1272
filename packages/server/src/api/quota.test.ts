import { groupOfKey } from '@conclave/protocol';
import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';

const groupCount = 2;
/** Each group holds at most 4 KiB of rows (and 1 session): a few small writes reach it. */
const setup = singleServerPerTest({ groupCount, fsmLimits: { groupStateBytesMax: 4096, sessionsMax: 1 } });

/** One hash tag, so every key lands in one group. */
const key = (name: string) => `{q}${name}`;
const group = groupOfKey({ key: key('a'), groupCount });

interface ErrorBody {
  code: string;
  message: string;
  advice: string;
}

describe('a group at its state quota, over HTTP', () => {
  it('answers a growing PUT and txn with 507 QUOTA_EXCEEDED naming the group, writes nothing, and lets a DELETE through', async () => {
    const { app } = await setup();
    const value = 'v'.repeat(1000);
    const accepted: string[] = [];
    let refused: { statusCode: number; json: <T>() => T } | null = null;
    for (let i = 0; i < 10 && refused === null; i++) {
      const answer = await app.inject({ method: 'PUT', url: `/v1/kv/${key(`k${i}`)}`, payload: value });
      if (answer.statusCode === 200) accepted.push(key(`k${i}`));
      else refused = answer;
    }
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused?.statusCode).toBe(507);
    const body = refused?.json<ErrorBody>();
    expect(body?.code).toBe('QUOTA_EXCEEDED');
    expect(body?.message).toMatch(new RegExp(`^group ${group}: the group holds \\d+ of its 4096 bytes`));
    expect(body?.advice).toMatch(/spread keys over more groups/);
    const missing = await app.inject({ method: 'GET', url: `/v1/kv/${key(`k${accepted.length}`)}` });
    expect(missing.statusCode).toBe(404);

    const txn = await app.inject({
      method: 'PUT',
      url: '/v1/txn',
      payload: [{ KV: { Verb: 'set', Key: key('t'), Value: Buffer.from(value).toString('base64') } }],
    });
    expect(txn.statusCode).toBe(507);
    expect(txn.json<ErrorBody>().code).toBe('QUOTA_EXCEEDED');

    const deleted = await app.inject({ method: 'DELETE', url: `/v1/kv/${accepted[0]}` });
    expect(deleted.statusCode).toBe(200);
    const after = await app.inject({ method: 'PUT', url: `/v1/kv/${key('t')}`, payload: value });
    expect(after.statusCode).toBe(200);
  });

  it('answers a session past the FSM sessions bound with 507 QUOTA_EXCEEDED', async () => {
    const { app } = await setup();
    const first = await app.inject({ method: 'PUT', url: '/v1/session/create', payload: { TTL: '15s' } });
    expect(first.statusCode).toBe(200);
    const second = await app.inject({ method: 'PUT', url: '/v1/session/create', payload: { TTL: '15s' } });
    expect(second.statusCode).toBe(507);
    expect(second.json<ErrorBody>()).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(second.json<ErrorBody>().message).toMatch(/^group 0: the group holds 1 sessions/);
    const list = await app.inject({ method: 'GET', url: '/v1/session/list' });
    expect(list.json<unknown[]>()).toHaveLength(1);
  });
});
