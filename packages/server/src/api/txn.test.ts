import { describe, expect, it } from 'vitest';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';
import { kvEntry } from './testing/recording-service.js';

const sessionId = '0d9bc76b-0a7c-4a1d-8d4e-1f1b2a3c4d5e';
const b64 = (text: string) => Buffer.from(text).toString('base64');
const txn = (ops: unknown) => ({ method: 'PUT' as const, url: '/v1/txn', payload: JSON.stringify(ops) });

describe('PUT /v1/txn', () => {
  it('decodes every verb into the ops the service gets, keeping only the fields each verb uses', async () => {
    const { app, service } = await apiApp({
      answers: { txn: async () => ({ ok: true, results: [], index: 9 }) },
    });
    const ops = [
      { KV: { Verb: 'set', Key: '{a}/1', Value: b64('one'), Flags: 3, Index: 99 } },
      { KV: { Verb: 'cas', Key: '{a}/2', Value: null, Index: 0 } },
      { KV: { Verb: 'lock', Key: '{a}/l', Value: b64('me'), Session: sessionId } },
      { KV: { Verb: 'unlock', Key: '{a}/l', Session: sessionId } },
      { KV: { Verb: 'get', Key: '{a}/1', Value: b64('ignored') } },
      { KV: { Verb: 'get-tree', Key: '{a}/' } },
      { KV: { Verb: 'check-index', Key: '{a}/1', Index: 12 } },
      { KV: { Verb: 'check-session', Key: '{a}/l', Session: sessionId } },
      { KV: { Verb: 'check-not-exists', Key: '{a}/3' } },
      { KV: { Verb: 'delete', Key: '{a}/4' } },
      { KV: { Verb: 'delete-tree', Key: '{a}/d/' } },
      { KV: { Verb: 'delete-cas', Key: '{a}/5', Index: 4 } },
    ];
    const response = await app.inject(txn(ops));
    expect([response.statusCode, response.body]).toEqual([200, '{"Results":[],"Errors":null}']);
    const value = (text: string) => new Uint8Array(Buffer.from(text));
    expect(service.callsOf('txn')).toEqual([
      {
        ops: [
          { verb: 'set', key: '{a}/1', value: value('one'), flags: 3 },
          { verb: 'cas', key: '{a}/2', value: new Uint8Array(0), flags: 0, index: 0 },
          { verb: 'lock', key: '{a}/l', value: value('me'), flags: 0, session: sessionId },
          { verb: 'unlock', key: '{a}/l', value: new Uint8Array(0), flags: 0, session: sessionId },
          { verb: 'get', key: '{a}/1' },
          { verb: 'get-tree', key: '{a}/' },
          { verb: 'check-index', key: '{a}/1', index: 12 },
          { verb: 'check-session', key: '{a}/l', session: sessionId },
          { verb: 'check-not-exists', key: '{a}/3' },
          { verb: 'delete', key: '{a}/4' },
          { verb: 'delete-tree', key: '{a}/d/' },
          { verb: 'delete-cas', key: '{a}/5', index: 4 },
        ],
      },
    ]);
  });

  it('matches field names ignoring case, as Go does, and ignores unknown fields', async () => {
    const { app, service } = await apiApp({
      answers: { txn: async () => ({ ok: true, results: [], index: 1 }) },
    });
    await app.inject(txn([{ kv: { verb: 'set', KEY: 'k', value: b64('v'), Namespace: 'x' } }]));
    expect(service.callsOf('txn')[0]?.ops).toEqual([
      { verb: 'set', key: 'k', value: new Uint8Array(Buffer.from('v')), flags: 0 },
    ]);
  });

  it('encodes results as Consul does: one {"KV": entry} each, values in base64 or null', async () => {
    const results = [
      kvEntry({ key: 'k', value: new Uint8Array(Buffer.from('v')), createIndex: 5, modifyIndex: 6 }),
      kvEntry({ key: 'l', lockIndex: 1, session: sessionId }),
    ];
    const { app } = await apiApp({ answers: { txn: async () => ({ ok: true, results, index: 6 }) } });
    const response = await app.inject(txn([{ KV: { Verb: 'get', Key: 'k' } }]));
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body).toBe(
      '{"Results":[' +
        '{"KV":{"LockIndex":0,"Key":"k","Flags":0,"Value":"dg==","CreateIndex":5,"ModifyIndex":6}},' +
        `{"KV":{"LockIndex":1,"Key":"l","Flags":0,"Value":null,"Session":"${sessionId}","CreateIndex":1,"ModifyIndex":1}}` +
        '],"Errors":null}',
    );
  });

  it('answers a failed transaction with 409 and the errors by op index', async () => {
    const errors = [{ opIndex: 1, what: 'failed to set key "b", index is stale' }];
    const { app } = await apiApp({ answers: { txn: async () => ({ ok: false, errors, index: 6 }) } });
    const response = await app.inject(
      txn([{ KV: { Verb: 'get', Key: 'a' } }, { KV: { Verb: 'cas', Key: 'b', Index: 1 } }]),
    );
    expect(response.statusCode).toBe(409);
    expect(response.body).toBe(
      '{"Results":null,"Errors":[{"OpIndex":1,"What":"failed to set key \\"b\\", index is stale"}]}',
    );
  });

  it('refuses more than txnOpsMax ops with 413 TXN_TOO_LARGE', async () => {
    const target = await apiApp({ limits: { txnOpsMax: 2 } });
    const op = { KV: { Verb: 'get', Key: 'k' } };
    await expectRefused(target, txn([op, op, op]), {
      status: 413,
      code: 'TXN_TOO_LARGE',
      message: /3 operations, more than the limit of 2/,
    });
  });

  it('refuses one value over kvValueBytesMax (413 VALUE_TOO_LARGE) and values adding up to more (413 TXN_TOO_LARGE)', async () => {
    const target = await apiApp({ limits: { kvValueBytesMax: 4 } });
    await expectRefused(target, txn([{ KV: { Verb: 'set', Key: 'k', Value: b64('12345') } }]), {
      status: 413,
      code: 'VALUE_TOO_LARGE',
      message: /operation 0: the value for key "k" is 5 bytes/,
    });
    const pair = [
      { KV: { Verb: 'set', Key: 'a', Value: b64('123') } },
      { KV: { Verb: 'set', Key: 'b', Value: b64('45') } },
    ];
    await expectRefused(target, txn(pair), {
      status: 413,
      code: 'TXN_TOO_LARGE',
      message: /add up to 5 bytes/,
    });
  });

  it('refuses a body over txnBodyBytesMax with 413 TXN_TOO_LARGE', async () => {
    const target = await apiApp({ limits: { txnBodyBytesMax: 64 } });
    const ops = [{ KV: { Verb: 'set', Key: 'k', Value: b64('x'.repeat(60)) } }];
    await expectRefused(target, txn(ops), {
      status: 413,
      code: 'TXN_TOO_LARGE',
      message: /transaction body is larger than 64 bytes, the most 128 operations \(txnOpsMax\)/,
    });
  });

  it.each([
    ['not JSON', '{', /failed to parse body/],
    ['an object', { KV: {} }, /JSON array of operations/],
    ['empty', [], /at least one operation/],
    ['a non-object op', [1], /operation 0: must be an object/],
    ['a Node op', [{ Node: { Verb: 'get' } }], /operation 0: only KV operations/],
    [
      'an unknown verb',
      [{ KV: { Verb: 'get', Key: 'a' } }, { KV: { Verb: 'frob', Key: 'k' } }],
      /operation 1: unknown verb "frob"/,
    ],
    ['a missing verb', [{ KV: { Key: 'k' } }], /operation 0: unknown verb ""/],
    ['a missing key', [{ KV: { Verb: 'get' } }], /operation 0: Key is required/],
    ['a key with a leading slash', [{ KV: { Verb: 'get', Key: '/k' } }], /must not begin with/],
    ['a numeric key', [{ KV: { Verb: 'get', Key: 7 } }], /operation 0: Key must be a string/],
    [
      'a value not in base64',
      [{ KV: { Verb: 'set', Key: 'k', Value: 'no!' } }],
      /operation 0: Value must be base64/,
    ],
    [
      'negative flags',
      [{ KV: { Verb: 'set', Key: 'k', Flags: -1 } }],
      /operation 0: Flags must be an unsigned/,
    ],
    [
      'a fractional index',
      [{ KV: { Verb: 'cas', Key: 'k', Index: 1.5 } }],
      /operation 0: Index must be an unsigned/,
    ],
    [
      'a lock without session',
      [{ KV: { Verb: 'lock', Key: 'k' } }],
      /operation 0: Session is required for lock/,
    ],
    [
      'a bad session',
      [{ KV: { Verb: 'check-session', Key: 'k', Session: 'abc' } }],
      /Session must be a UUID/,
    ],
  ])('refuses %s with 400 naming the op, before calling the service', async (_name, ops, message) => {
    const target = await apiApp();
    const payload = typeof ops === 'string' ? ops : JSON.stringify(ops);
    await expectRefused(
      target,
      { method: 'PUT', url: '/v1/txn', payload },
      { status: 400, code: 'BAD_REQUEST', message },
    );
  });
});
