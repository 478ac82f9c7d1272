import type { AddressInfo } from 'node:net';
import Consul from 'consul';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConclaveService, KvEntry } from '../service/types.js';
import { apiApp } from './testing/app.js';
import { kvEntry, readOf, sessionEntry } from './testing/recording-service.js';

const sessionId = '9a1e7c52-3f4b-4d6e-8a0b-c1d2e3f4a5b6';

/**
 * Answers backed by a map, so what the npm client writes it can read back: this proves the
 * wire format both ways, not the store (the real service is tested elsewhere).
 */
function mapBackedAnswers(): Partial<ConclaveService> {
  const entries = new Map<string, KvEntry>();
  let index = 10;
  const matching = (prefix: string) => [...entries.values()].filter((e) => e.key.startsWith(prefix));
  return {
    kvPut: async ({ key, value, flags, cas }) => {
      const current = entries.get(key);
      if (cas !== null && (current?.modifyIndex ?? 0) !== cas) return { ok: false, index };
      index += 1;
      entries.set(
        key,
        kvEntry({ key, value, flags, createIndex: current?.createIndex ?? index, modifyIndex: index }),
      );
      return { ok: true, index };
    },
    kvGet: async ({ key }) => readOf(entries.get(key) ?? null, { index }),
    kvList: async ({ prefix }) => readOf(matching(prefix), { index }),
    kvKeys: async ({ prefix }) =>
      readOf(
        matching(prefix).map((e) => e.key),
        { index },
      ),
    kvDelete: async ({ key }) => ({ ok: entries.delete(key), index: ++index }),
    sessionCreate: async () => ({ id: sessionId }),
    sessionInfo: async ({ id }) => readOf(sessionEntry({ id, ttlSeconds: 15 }), { index }),
    sessionDestroy: async () => true,
    leaderAddress: () => '127.0.0.1:8300',
    txn: async ({ ops }) => ({
      ok: true,
      results: ops.flatMap((op) => entries.get(op.key) ?? []),
      index,
    }),
  };
}

let app: FastifyInstance | null = null;
let consul: Consul | null = null;
afterEach(async () => {
  consul?.destroy();
  await app?.close();
  app = null;
  consul = null;
});

async function connect() {
  const target = await apiApp({ answers: mapBackedAnswers(), nodeName: 'server-1' });
  app = target.app;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  consul = new Consul({ host: '127.0.0.1', port });
  return { consul, service: target.service };
}

describe('the npm consul client (v2) against the API', () => {
  it('sets, gets, lists, reads raw and deletes keys', async () => {
    const { consul, service } = await connect();
    expect(await consul.kv.set('app/config', 'hello')).toBe(true);
    expect(await consul.kv.set({ key: 'app/flagged', value: 'x', flags: 7, cas: 0 })).toBe(true);
    // The body is `false` (kv.test.ts checks the bytes); papi turns a falsy body into undefined.
    expect(await consul.kv.set({ key: 'app/flagged', value: 'y', cas: 0 })).toBeFalsy();
    expect(service.callsOf('kvPut')[1]).toMatchObject({ key: 'app/flagged', flags: 7, cas: 0 });

    const entry = await consul.kv.get('app/config');
    expect(entry).toMatchObject({ Key: 'app/config', Value: 'hello', Flags: 0, LockIndex: 0 });
    expect(await consul.kv.get('app/missing')).toBeUndefined();

    const raw: unknown = await consul.kv.get({ key: 'app/config', raw: true });
    expect(Buffer.isBuffer(raw) && raw.toString()).toBe('hello');
    const tree = await consul.kv.get({ key: 'app/', recurse: true });
    expect(Array.isArray(tree) && tree.map((e) => [e.Key, e.Value])).toEqual([
      ['app/config', 'hello'],
      ['app/flagged', 'x'],
    ]);
    expect(await consul.kv.keys('app/')).toEqual(['app/config', 'app/flagged']);

    expect(await consul.kv.del('app/config')).toBe(true);
    expect(await consul.kv.get('app/config')).toBeUndefined();
  });

  it('creates, reads and destroys a session, and reads the leader', async () => {
    const { consul, service } = await connect();
    const created = await consul.session.create({
      name: 'web-lock',
      ttl: '15s',
      lockdelay: '5s',
      behavior: 'delete',
    });
    expect(created).toEqual({ ID: sessionId });
    expect(service.callsOf('sessionCreate')).toEqual([
      { name: 'web-lock', node: 'server-1', ttlSeconds: 15, behavior: 'delete', lockDelayMs: 5000 },
    ]);
    expect(await consul.session.info(sessionId)).toMatchObject({ ID: sessionId, TTL: '15s' });
    await consul.session.destroy(sessionId);
    expect(service.callsOf('sessionDestroy')).toEqual([{ id: sessionId }]);
    expect(await consul.status.leader()).toBe('127.0.0.1:8300');
  });

  it('runs a transaction', async () => {
    const { consul } = await connect();
    await consul.kv.set('{t}/a', 'one');
    // consul's transaction.d.ts describes flat ops, but lib/transaction.js sends the array as
    // the body unchanged, so Consul's own [{"KV": {...}}] shape is what works over the wire.
    const create = consul.transaction.create.bind(consul.transaction) as unknown as (
      operations: readonly unknown[],
    ) => Promise<unknown>;
    const outcome = await create([{ KV: { Verb: 'get', Key: '{t}/a' } }]);
    expect(outcome).toMatchObject({
      Results: [{ KV: { Key: '{t}/a', Value: Buffer.from('one').toString('base64') } }],
    });
  });
});
