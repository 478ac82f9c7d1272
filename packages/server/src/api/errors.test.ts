import { RaftError, defaultLimits as raftLimits } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { encodeCommand } from '../fsm/index.js';
import { defaultApiLimits, txnOpsMaxCeiling } from '../service/types.js';
import { resolveApiLimits, txnOpEntryBytesMax } from './limits.js';
import { apiApp } from './testing/app.js';

describe('sendError: every failure as {code, message, advice} with the catalogue status', () => {
  it('answers an expected service failure with its catalogue status and advice', async () => {
    const { app } = await apiApp({
      answers: {
        kvGet: async () => {
          throw new ConclaveError({ code: 'NO_LEADER', message: 'group 3 has no leader' });
        },
      },
    });
    const response = await app.inject({ method: 'GET', url: '/v1/kv/k' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.json()).toEqual({
      code: 'NO_LEADER',
      message: 'group 3 has no leader',
      advice: expect.stringContaining('majority'),
    });
  });

  it('names the leader a Raft NOT_LEADER points to', async () => {
    const { app } = await apiApp({
      answers: {
        kvPut: async () => {
          throw new RaftError({ code: 'NOT_LEADER', message: 'not the leader', leaderId: 's2' });
        },
      },
    });
    const response = await app.inject({ method: 'PUT', url: '/v1/kv/k', payload: 'v' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'NOT_LEADER', leaderId: 's2' });
  });

  it('maps TXN_CROSS_GROUP from the service to 400', async () => {
    const { app } = await apiApp({
      answers: {
        txn: async () => {
          throw new ConclaveError({ code: 'TXN_CROSS_GROUP', message: 'keys a and b are in groups 1 and 2' });
        },
      },
    });
    const response = await app.inject({
      method: 'PUT',
      url: '/v1/txn',
      payload: JSON.stringify([{ KV: { Verb: 'get', Key: 'a' } }, { KV: { Verb: 'get', Key: 'b' } }]),
    });
    expect([response.statusCode, response.json<{ code: string }>().code]).toEqual([400, 'TXN_CROSS_GROUP']);
  });

  it('answers a bug with 500 INTERNAL and keeps its details out of the answer', async () => {
    const { app } = await apiApp({
      answers: {
        sessionList: async () => {
          throw new TypeError('secret internals at line 12');
        },
      },
    });
    const response = await app.inject({ method: 'GET', url: '/v1/session/list' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({
      code: 'INTERNAL',
      message: 'internal error; see the server log',
      advice: expect.stringContaining('bug'),
    });
  });
});

describe('limits', () => {
  it('derives the txn body limit from the value, key and op limits unless given', () => {
    const small = resolveApiLimits({ kvValueBytesMax: 3, kvKeyBytesMax: 1, txnOpsMax: 2 });
    expect(small.txnBodyBytesMax).toBe(4 + 2 * (6 + 512));
    expect(resolveApiLimits({ txnBodyBytesMax: 100 }).txnBodyBytesMax).toBe(100);
  });

  it('keeps the largest transaction the limits allow within one Raft proposal, framing included', () => {
    // At the edge of the check: the shortest keys, the most ops, and what is left for values.
    const edge = { kvKeyBytesMax: 1, txnOpsMax: txnOpsMaxCeiling };
    const kvValueBytesMax = raftLimits.proposalBytesMax - edge.txnOpsMax * (1 + txnOpEntryBytesMax) - 64;
    for (const limits of [defaultApiLimits, resolveApiLimits({ ...edge, kvValueBytesMax })]) {
      const valueBytes = Math.floor(limits.kvValueBytesMax / limits.txnOpsMax);
      const ops = [...Array(limits.txnOpsMax).keys()].map((i) => ({
        verb: 'check-not-exists' as const,
        // Multi-byte characters: the limit counts UTF-8 bytes, as msgpack stores them.
        key: 'é'.repeat(limits.kvKeyBytesMax / 2) || String.fromCharCode(97 + (i % 26)),
        value: new Uint8Array(valueBytes),
        flags: Number.MAX_SAFE_INTEGER,
        index: Number.MAX_SAFE_INTEGER,
        session: '00000000-0000-0000-0000-000000000000',
      }));
      expect(encodeCommand({ type: 'txn', ops }).byteLength).toBeLessThanOrEqual(raftLimits.proposalBytesMax);
    }
    expect(() => resolveApiLimits({ ...edge, kvValueBytesMax: kvValueBytesMax + 1 })).toThrow(
      /Raft proposal/,
    );
  });

  it('refuses limits that are not positive integers, or a default wait above the maximum', () => {
    expect(() => resolveApiLimits({ txnOpsMax: 0 })).toThrow(/txnOpsMax must be a positive integer/);
    expect(() => resolveApiLimits({ kvValueBytesMax: 1.5 })).toThrow(/kvValueBytesMax/);
    // A value the snapshot parts could not hold (fsm snapshotRowBytesMax) is refused at start-up.
    expect(() => resolveApiLimits({ kvValueBytesMax: 1024 * 1024 })).toThrow(/snapshot part/);
    expect(() => resolveApiLimits({ blockingWaitDefaultMs: 2, blockingWaitMaxMs: 1 })).toThrow(
      /blockingWaitDefaultMs must not exceed blockingWaitMaxMs/,
    );
  });
});
