/**
 * End to end with the npm `consul` client (v2): three real `conclave agent` processes (the
 * built dist) on loopback, one client per server. Every test writes through one server and
 * reads through another, so each request may be forwarded to its group's leader. Needs
 * `npm run build` (`npm test` builds first).
 */

import { groupOfKey } from '@conclave/protocol';
import { assertBuilt, waitFor } from '@conclave/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { base64, type ConsulClient, ConsulCluster, refusalStatus } from './testing/consul-cluster.js';

const groups = 4;
const tickMs = 10;

let cluster: ConsulCluster;
/** One client per server: s1, s2, s3. */
let c1: ConsulClient;
let c2: ConsulClient;
let c3: ConsulClient;

beforeAll(async () => {
  assertBuilt();
  cluster = await ConsulCluster.start({
    size: 3,
    groups,
    tickMs,
    requestTimeoutMs: 10_000,
    readyTimeoutMs: 20_000,
  });
  [c1, c2, c3] = ['s1', 's2', 's3'].map((id) => cluster.client(id)) as [
    ConsulClient,
    ConsulClient,
    ConsulClient,
  ];
}, 30_000);

afterEach((context) => {
  if (context.task.result?.state === 'fail') {
    for (const server of cluster.servers) {
      process.stderr.write(`---- ${server.nodeId} ----\n${server.output.slice(-4000)}\n`);
    }
  }
});

afterAll(async () => {
  await cluster?.destroy();
  expect(cluster?.processes.liveChildren() ?? []).toEqual([]);
});

describe('the npm consul client against a three-server cluster', () => {
  it('sets, gets, lists (recurse, keys with separator) and deletes keys across servers', async () => {
    const keys = ['kv/a', 'kv/b/c', 'kv/b/d', 'kv/e'];
    // The keys span more than one group, so listing them gathers from several leaders.
    expect(new Set(keys.map((key) => groupOfKey({ key, groupCount: groups }))).size).toBeGreaterThan(1);
    const writers = [c1, c2, c3, c1];
    for (const [i, key] of keys.entries()) {
      expect(await writers[i]?.kv.set({ key, value: `value of ${key}` })).toBe(true);
    }

    expect(await c2.kv.get({ key: 'kv/a' })).toMatchObject({
      Key: 'kv/a',
      Value: 'value of kv/a',
      Flags: 0,
      LockIndex: 0,
    });
    expect(await c3.kv.get({ key: 'kv/missing' })).toBeUndefined();
    const tree = await c3.kv.get({ key: 'kv/', recurse: true });
    expect(tree?.map((e) => [e.Key, e.Value])).toEqual(keys.map((key) => [key, `value of ${key}`]));
    expect(await c1.kv.keys({ key: 'kv/' })).toEqual(keys);
    expect(await c2.kv.keys({ key: 'kv/', separator: '/' })).toEqual(['kv/a', 'kv/b/', 'kv/e']);
    expect(await c3.kv.keys({ key: 'kv/b/', separator: '/' })).toEqual(['kv/b/c', 'kv/b/d']);

    expect(await c2.kv.del({ key: 'kv/a' })).toBe(true);
    expect(await c1.kv.get({ key: 'kv/a' })).toBeUndefined();
    expect(await c3.kv.del({ key: 'kv/b/', recurse: true })).toBe(true);
    expect(await c1.kv.keys({ key: 'kv/' })).toEqual(['kv/e']);
    await c1.kv.del({ key: 'kv/', recurse: true });
    // An empty prefix lists as 404 in Consul: the client refuses it.
    expect(await refusalStatus(c2.kv.keys({ key: 'kv/' }))).toBe(404);
  });

  it('check-and-set succeeds only at the current ModifyIndex, and 0 only for a new key', async () => {
    const key = 'cas/key';
    expect(await c1.kv.set({ key, value: 'one', cas: 0 })).toBe(true);
    expect(await c2.kv.set({ key, value: 'again', cas: 0 })).toBeUndefined();
    const first = await c3.kv.get({ key });
    expect(first?.Value).toBe('one');
    const index = first?.ModifyIndex ?? 0;

    expect(await c2.kv.set({ key, value: 'two', cas: index })).toBe(true);
    // The same index again is now stale: refused, and the value stays.
    expect(await c3.kv.set({ key, value: 'three', cas: index })).toBeUndefined();
    const second = await c1.kv.get({ key });
    expect(second).toMatchObject({ Value: 'two', CreateIndex: first?.CreateIndex });
    expect(second?.ModifyIndex).toBeGreaterThan(index);

    expect(await c1.kv.del({ key, cas: index })).toBeUndefined();
    expect(await c2.kv.get({ key })).toMatchObject({ Value: 'two' });
    expect(await c3.kv.del({ key, cas: second?.ModifyIndex ?? 0 })).toBe(true);
    expect(await c1.kv.get({ key })).toBeUndefined();
  });

  it('keeps flags', async () => {
    expect(await c1.kv.set({ key: 'flags/small', value: 'x', flags: 42 })).toBe(true);
    expect(await c2.kv.set({ key: 'flags/large', value: 'y', flags: 2 ** 40 + 3 })).toBe(true);
    expect(await c3.kv.get({ key: 'flags/small' })).toMatchObject({ Flags: 42 });
    expect(await c1.kv.get({ key: 'flags/large' })).toMatchObject({ Flags: 2 ** 40 + 3 });
    // A plain set without flags writes 0, as in Consul.
    expect(await c2.kv.set({ key: 'flags/small', value: 'z' })).toBe(true);
    expect(await c3.kv.get({ key: 'flags/small' })).toMatchObject({ Flags: 0, Value: 'z' });
  });

  it('creates, reads, lists, renews and destroys a session through different servers', async () => {
    const { ID: id } = await c1.session.create({ name: 'e2e-session', ttl: '30s', lockdelay: '2s' });
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const info = await c2.session.info({ id });
    expect(info).toMatchObject({
      ID: id,
      Name: 'e2e-session',
      Node: 's1',
      TTL: '30s',
      Behavior: 'release',
      LockDelay: 2e9,
    });
    expect((await c3.session.list()).map((s) => s.ID)).toContain(id);
    expect((await c2.session.node({ node: 's1' })).map((s) => s.ID)).toContain(id);
    expect((await c3.session.node({ node: 's2' })).map((s) => s.ID)).not.toContain(id);
    const renewed = await c3.session.renew({ id });
    expect(renewed).toHaveLength(1);
    expect(renewed[0]).toMatchObject({ ID: id, TTL: '30s' });

    await c3.session.destroy({ id });
    expect(await c1.session.info({ id })).toBeUndefined();
    expect((await c2.session.list()).map((s) => s.ID)).not.toContain(id);
    expect(await refusalStatus(c2.session.renew({ id }))).toBe(404);
  });

  it('locks a key for one session at a time; release and destroy free it', async () => {
    const key = 'lock/leader';
    const { ID: a } = await c1.session.create({ name: 'holder-a', lockdelay: '0s' });
    const { ID: b } = await c2.session.create({ name: 'holder-b', lockdelay: '0s' });

    expect(await c1.kv.set({ key, value: 'a leads', acquire: a })).toBe(true);
    expect(await c2.kv.get({ key })).toMatchObject({ Session: a, LockIndex: 1, Value: 'a leads' });
    // Held by a: b is refused and changes nothing, through any server.
    expect(await c3.kv.set({ key, value: 'b leads', acquire: b })).toBeUndefined();
    expect(await c2.kv.set({ key, value: 'b leads', acquire: b })).toBeUndefined();
    expect(await c2.kv.set({ key, value: 'b lets go', release: b })).toBeUndefined();
    expect(await c1.kv.get({ key })).toMatchObject({ Session: a, LockIndex: 1, Value: 'a leads' });
    // The holder acquiring again updates the value and keeps the LockIndex.
    expect(await c3.kv.set({ key, value: 'a still leads', acquire: a })).toBe(true);
    expect(await c1.kv.get({ key })).toMatchObject({ Session: a, LockIndex: 1, Value: 'a still leads' });

    expect(await c1.kv.set({ key, value: 'a let go', release: a })).toBe(true);
    const released = await c3.kv.get({ key });
    expect(released).toMatchObject({ LockIndex: 1, Value: 'a let go' });
    expect(released?.Session).toBeUndefined();

    expect(await c3.kv.set({ key, value: 'b leads', acquire: b })).toBe(true);
    expect(await c1.kv.get({ key })).toMatchObject({ Session: b, LockIndex: 2 });
    expect(await c1.kv.set({ key, value: 'a again', acquire: a })).toBeUndefined();

    // Destroying the holder (behavior release) releases the key and keeps its value.
    await c2.session.destroy({ id: b });
    const freed = await c1.kv.get({ key });
    expect(freed).toMatchObject({ LockIndex: 2, Value: 'b leads' });
    expect(freed?.Session).toBeUndefined();
    expect(await c2.kv.set({ key, value: 'a leads again', acquire: a })).toBe(true);
    expect(await c3.kv.get({ key })).toMatchObject({ Session: a, LockIndex: 3 });
    await c1.session.destroy({ id: a });
  });

  it('deletes a lock held by a behavior=delete session when it is destroyed', async () => {
    const key = 'lock/ephemeral';
    const { ID: id } = await c3.session.create({ behavior: 'delete', lockdelay: '0s' });
    expect(await c1.kv.set({ key, value: 'here while I live', acquire: id })).toBe(true);
    expect(await c2.kv.get({ key })).toMatchObject({ Session: id });
    await c2.session.destroy({ id });
    expect(await c3.kv.get({ key })).toBeUndefined();
  });

  it('refuses the key to others for the lock-delay after its holder is destroyed', async () => {
    const key = 'lock/delayed';
    const { ID: holder } = await c1.session.create({ lockdelay: '30s' });
    const { ID: next } = await c2.session.create({ lockdelay: '0s' });
    expect(await c1.kv.set({ key, value: 'held', acquire: holder })).toBe(true);
    await c3.session.destroy({ id: holder });
    const freed = await c2.kv.get({ key });
    expect(freed?.Session).toBeUndefined();
    // Free, yet refused: the old holder must get time to notice it lost the lock.
    expect(await c2.kv.set({ key, value: 'too soon', acquire: next })).toBeUndefined();
    expect(await c3.kv.get({ key })).toMatchObject({ Value: 'held', LockIndex: 1 });
    await c2.session.destroy({ id: next });
  });

  it('a blocking query waits out its wait, and returns at once on a write through another server', async () => {
    const key = 'block/key';
    expect(await c2.kv.set({ key, value: 'before' })).toBe(true);
    const { entry, index } = await c1.getWithIndex({ key });
    expect(entry?.Value).toBe('before');

    // Nothing changes: the query holds for its wait (plus at most 1/16 jitter), same index.
    const waitMs = 400;
    const idleStarted = Date.now();
    const idle = await c1.getWithIndex({ key, index, wait: `${waitMs}ms` });
    const idleMs = Date.now() - idleStarted;
    expect(idle.index).toBe(index);
    expect(idle.entry?.Value).toBe('before');
    expect(idleMs).toBeGreaterThanOrEqual(waitMs - 20);

    // A write through another server ends a 20 s wait at once with the new value.
    const started = Date.now();
    let settled = false;
    const blocked = c1.getWithIndex({ key, index, wait: '20s', timeout: 25_000 }).finally(() => {
      settled = true;
    });
    // A consistent read through a third server: a round trip that lets the query arrive first.
    expect(await c3.kv.get({ key, consistent: true })).toMatchObject({ Value: 'before' });
    expect(settled).toBe(false);
    expect(await c2.kv.set({ key, value: 'after' })).toBe(true);
    const woken = await blocked;
    const elapsedMs = Date.now() - started;
    expect(woken.entry?.Value).toBe('after');
    expect(woken.index).toBeGreaterThan(index);
    expect(elapsedMs).toBeLessThan(10_000);
  });

  it('runs a transaction within one hash tag atomically, and refuses one across groups', async () => {
    const ops = [
      { KV: { Verb: 'set', Key: '{app}/a', Value: base64('alpha') } },
      { KV: { Verb: 'set', Key: '{app}/b', Value: base64('beta'), Flags: 9 } },
    ];
    const done = await c1.transaction.create(ops);
    expect(done.Errors).toBeNull();
    expect(done.Results?.map((r) => r.KV.Key)).toEqual(['{app}/a', '{app}/b']);
    expect(await c2.kv.get({ key: '{app}/a' })).toMatchObject({ Value: 'alpha' });
    expect(await c3.kv.get({ key: '{app}/b' })).toMatchObject({ Value: 'beta', Flags: 9 });

    // A failing check aborts the whole transaction: 409, and the set before it is not applied.
    const b = await c1.kv.get({ key: '{app}/b' });
    const failed = c3.transaction.create([
      { KV: { Verb: 'set', Key: '{app}/a', Value: base64('changed') } },
      { KV: { Verb: 'check-index', Key: '{app}/b', Index: (b?.ModifyIndex ?? 0) + 1000 } },
    ]);
    expect(await refusalStatus(failed)).toBe(409);
    expect(await c1.kv.get({ key: '{app}/a' })).toMatchObject({ Value: 'alpha' });

    const read = await c2.transaction.create([
      { KV: { Verb: 'get', Key: '{app}/a' } },
      { KV: { Verb: 'get', Key: '{app}/b' } },
    ]);
    expect(read.Results?.map((r) => [r.KV.Key, r.KV.Value])).toEqual([
      ['{app}/a', base64('alpha')],
      ['{app}/b', base64('beta')],
    ]);

    // Untagged keys in different groups cannot share a transaction.
    const [x, y] = keysInTwoGroups();
    const spanning = c1.transaction.create([
      { KV: { Verb: 'set', Key: x, Value: base64('x') } },
      { KV: { Verb: 'set', Key: y, Value: base64('y') } },
    ]);
    expect(await refusalStatus(spanning)).toBe(400);
    expect(await c2.kv.get({ key: x })).toBeUndefined();
  });

  it('reads a write through another server at once when consistent, and eventually when stale', async () => {
    for (let round = 0; round < 5; round++) {
      const key = `read/consistent-${round}`;
      const [writer, ...readers] = rotate([c1, c2, c3], round);
      expect(await writer?.kv.set({ key, value: `v${round}` })).toBe(true);
      for (const reader of readers) {
        expect(
          await reader.kv.get({ key, consistent: true }),
          `${reader.nodeId} round ${round}`,
        ).toMatchObject({
          Value: `v${round}`,
        });
      }
    }
    const key = 'read/stale';
    for (const [round, writer] of [c1, c2, c3].entries()) {
      expect(await writer.kv.set({ key, value: `stale-${round}` })).toBe(true);
      for (const reader of [c1, c2, c3]) {
        await waitFor(async () => (await reader.kv.get({ key, stale: true }))?.Value === `stale-${round}`, {
          timeoutMs: 5_000,
          intervalMs: 10,
          what: `a stale read of stale-${round} on ${reader.nodeId}`,
        });
      }
    }
  });
});

/** Two plain keys in different groups. */
function keysInTwoGroups(): [string, string] {
  const first = 'span/0';
  const group = groupOfKey({ key: first, groupCount: groups });
  for (let i = 1; i < 100; i++) {
    const key = `span/${i}`;
    if (groupOfKey({ key, groupCount: groups }) !== group) return [first, key];
  }
  throw new Error('no two keys in different groups');
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
