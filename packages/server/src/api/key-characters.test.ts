import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';

/**
 * Keys holding control characters (U+0000-U+001F, U+007F) are refused with 400 BAD_REQUEST
 * naming the character, in the URL of every KV method and in every txn op, before the
 * service is called.
 */

const controls = [
  ['NUL', '%00', '\u0000', 'U+0000'],
  ['a newline', '%0A', '\n', 'U+000A'],
  ['ESC', '%1B', '\u001b', 'U+001B'],
  ['US', '%1F', '\u001f', 'U+001F'],
  ['DEL', '%7F', '\u007f', 'U+007F'],
] as const;

const escaped = (codePoint: string) => codePoint.replace('+', '\\+');

describe('keys with control characters', () => {
  it.each(controls)(
    'refuses %s in a KV key or prefix, whatever the method',
    async (_name, encoded, _raw, codePoint) => {
      const target = await apiApp();
      const message = new RegExp(`control character ${escaped(codePoint)} at character 3: keys may not hold`);
      for (const request of [
        { method: 'PUT' as const, url: `/v1/kv/app${encoded}x`, payload: 'v' },
        { method: 'GET' as const, url: `/v1/kv/app${encoded}x` },
        { method: 'GET' as const, url: `/v1/kv/app${encoded}x?raw` },
        { method: 'GET' as const, url: `/v1/kv/app${encoded}?recurse` },
        { method: 'GET' as const, url: `/v1/kv/app${encoded}?keys` },
        { method: 'DELETE' as const, url: `/v1/kv/app${encoded}x` },
        { method: 'DELETE' as const, url: `/v1/kv/app${encoded}?recurse` },
      ]) {
        await expectRefused(target, request, { status: 400, code: 'BAD_REQUEST', message });
      }
    },
  );

  it.each(controls)('refuses %s in the key of any txn op', async (_name, _encoded, raw, codePoint) => {
    const target = await apiApp();
    for (const Verb of ['set', 'get', 'get-tree', 'delete', 'check-not-exists']) {
      const ops = [
        { KV: { Verb: 'set', Key: '{a}/fine', Value: 'dg==' } },
        { KV: { Verb, Key: `{a}${raw}x`, Value: 'dg==' } },
      ];
      await expectRefused(
        target,
        { method: 'PUT', url: '/v1/txn', payload: JSON.stringify(ops) },
        {
          status: 400,
          code: 'BAD_REQUEST',
          message: new RegExp(
            `operation 1: Key holds the control character ${escaped(codePoint)} at character 3`,
          ),
        },
      );
    }
  });

  it('takes other characters: tabs are controls, but spaces, unicode and U+0080-U+009F are not', async () => {
    const target = await apiApp({ answers: { kvPut: async () => ({ ok: true, index: 1 }) } });
    await expectRefused(
      target,
      { method: 'PUT', url: '/v1/kv/a%09b', payload: 'v' },
      { status: 400, code: 'BAD_REQUEST', message: /U\+0009/ },
    );
    for (const key of ['a b', 'clé', 'a\u0080b', '日本/語']) {
      const response = await target.app.inject({ method: 'PUT', url: `/v1/kv/${encodeURIComponent(key)}` });
      expect(response.statusCode, key).toBe(200);
    }
  });
});

describe('keys with control characters, against the whole agent', () => {
  const setup = singleServerPerTest({ groupCount: 2 });

  it('writes nothing for a refused PUT or txn, and stores nothing a GET could find', async () => {
    const { app, host } = await setup();
    const lastIndexes = () => [0, 1].map((g) => host.group(g).raw.status().lastIndex);
    const before = lastIndexes();
    const put = await app.inject({ method: 'PUT', url: '/v1/kv/a%00b', payload: 'v' });
    expect([put.statusCode, put.json<{ code: string }>().code]).toEqual([400, 'BAD_REQUEST']);
    const txn = await app.inject({
      method: 'PUT',
      url: '/v1/txn',
      payload: JSON.stringify([{ KV: { Verb: 'set', Key: 'a\u0000b', Value: 'dg==' } }]),
    });
    expect([txn.statusCode, txn.json<{ code: string }>().code]).toEqual([400, 'BAD_REQUEST']);
    expect(lastIndexes()).toEqual(before);
    const keys = await app.inject({ method: 'GET', url: '/v1/kv/?keys' });
    expect(keys.json()).toEqual([]);
  });
});
