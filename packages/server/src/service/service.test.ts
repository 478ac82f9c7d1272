import { groupOfKey } from '@conclave/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { callPackr, internalCallPath, msgpackContentType } from './forward-client.js';
import { eventually, startTestCluster, type TestCluster } from './testing/cluster.js';
import type { ReadRequest } from './types.js';

const groupCount = 4;
const consistent: ReadRequest = { consistency: 'consistent', maxStaleMs: null, block: null };
const leaderRead: ReadRequest = { consistency: 'default', maxStaleMs: null, block: null };
const stale: ReadRequest = { consistency: 'stale', maxStaleMs: null, block: null };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => new TextDecoder().decode(value);
const put = (key: string, value: string) => ({
  key,
  value: bytes(value),
  flags: 0,
  cas: null,
  acquire: null,
  release: null,
});

/** A key whose group is `groupId`, found by trying suffixes (the hash is fixed, so this is too). */
function keyInGroup(prefix: string, groupId: number): string {
  for (let i = 0; i < 10_000; i++) {
    const key = `${prefix}${i}`;
    if (groupOfKey({ key, groupCount }) === groupId) return key;
  }
  throw new Error(`no key for group ${groupId}`);
}

let clock = 1_000_000;
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ size: 3, groupCount, now: () => clock });
  await eventually(() => [...Array(groupCount).keys()].every((g) => cluster.leaderOf(g) !== undefined), {
    timeoutMs: 10_000,
  });
});

afterAll(async () => {
  await cluster.close();
});

describe('routing', () => {
  it('a write sent to a follower is forwarded to the leader and read back through a third server', async () => {
    const key = keyInGroup('route/', 1);
    const follower = cluster.followerOf(1);
    const written = await follower.runtime.service.kvPut(put(key, 'v1'));
    expect(written.ok).toBe(true);
    const other = cluster.servers.find((s) => s !== follower && s !== cluster.leaderOf(1)) ?? follower;
    const read = await other.runtime.service.kvGet({ ...consistent, key });
    expect(text(read.value?.value)).toBe('v1');
    expect(read.value?.modifyIndex).toBe(written.index);
    expect(read.meta.knownLeader).toBe(true);
  });

  it('a stale read is served by the server asked, without a leader round trip', async () => {
    const key = keyInGroup('stale/', 2);
    const { index } = (await cluster.servers[0]?.runtime.service.kvPut(put(key, 'x'))) ?? { index: 0 };
    const follower = cluster.followerOf(2);
    await eventually(() => follower.machines.fsm(2).appliedIndex() >= index, { timeoutMs: 5_000 });
    const read = await follower.runtime.service.kvGet({ ...stale, key });
    expect(text(read.value?.value)).toBe('x');
    expect(read.meta.consistency).toBe('stale');
  });

  it('a recursive list gathers every group, sorted, with an index that sums the groups', async () => {
    const keys = [0, 1, 2, 3].map((g) => keyInGroup('tree/', g));
    for (const key of keys) await cluster.servers[1]?.runtime.service.kvPut(put(key, key));
    const listed = await cluster.servers[2]?.runtime.service.kvList({ ...leaderRead, prefix: 'tree/' });
    expect(listed?.value.map((e) => e.key)).toEqual([...keys].sort());
    const perGroup = [0, 1, 2, 3].map((g) =>
      Math.max(1, cluster.leaderOf(g)?.machines.fsm(g).kvIndex() ?? 0),
    );
    expect(listed?.meta.index).toBe(perGroup.reduce((a, b) => a + b, 0));
    const folders = await cluster.servers[0]?.runtime.service.kvKeys({
      ...leaderRead,
      prefix: '',
      separator: '/',
    });
    expect(folders?.value).toContain('tree/');
    expect(new Set(folders?.value).size).toBe(folders?.value.length);
  });

  it('a prefix holding a hash tag is read from its one group', async () => {
    await cluster.servers[0]?.runtime.service.kvPut(put('{app}/a', '1'));
    await cluster.servers[0]?.runtime.service.kvPut(put('{app}/b', '2'));
    const listed = await cluster.servers[1]?.runtime.service.kvList({ ...leaderRead, prefix: '{app}/' });
    const group = groupOfKey({ key: '{app}/', groupCount });
    expect(listed?.value.map((e) => e.key)).toEqual(['{app}/a', '{app}/b']);
    expect(listed?.meta.index).toBe(cluster.leaderOf(group)?.machines.fsm(group).kvIndex());
  });
});

describe('writes', () => {
  it('check-and-set succeeds only against the current ModifyIndex, and 0 means create-only', async () => {
    const service = cluster.servers[0]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const created = await service.kvPut({ ...put('cas/k', 'a'), cas: 0 });
    expect(created.ok).toBe(true);
    expect((await service.kvPut({ ...put('cas/k', 'b'), cas: 0 })).ok).toBe(false);
    expect((await service.kvPut({ ...put('cas/k', 'b'), cas: created.index + 1000 })).ok).toBe(false);
    expect((await service.kvPut({ ...put('cas/k', 'b'), cas: created.index })).ok).toBe(true);
    expect(text((await service.kvGet({ ...consistent, key: 'cas/k' })).value?.value)).toBe('b');
  });

  it('a recursive delete removes the prefix in every group', async () => {
    const service = cluster.servers[1]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    for (const g of [0, 1, 2, 3]) await service.kvPut(put(keyInGroup('gone/', g), 'x'));
    await service.kvDelete({ key: 'gone/', recurse: true, cas: null });
    expect((await service.kvList({ ...consistent, prefix: 'gone/' })).value).toEqual([]);
  });
});

describe('transactions', () => {
  it('refuses keys in different groups, naming them and the hash tag remedy', async () => {
    const a = keyInGroup('txn/', 0);
    const b = keyInGroup('txn/', 1);
    const service = cluster.servers[0]?.runtime.service;
    const attempt = service?.txn({
      ops: [
        { verb: 'set', key: a, value: bytes('1') },
        { verb: 'set', key: b, value: bytes('2') },
      ],
    });
    await expect(attempt).rejects.toMatchObject({ code: 'TXN_CROSS_GROUP' });
    await expect(attempt).rejects.toThrow(a);
    expect((await service?.kvGet({ ...consistent, key: a }))?.value).toBeNull();
  });

  it('applies atomically within one hash tag', async () => {
    const service = cluster.servers[2]?.runtime.service;
    const outcome = await service?.txn({
      ops: [
        { verb: 'set', key: '{t}/x', value: bytes('1') },
        { verb: 'set', key: '{t}/y', value: bytes('2') },
        { verb: 'get', key: '{t}/x' },
      ],
    });
    expect(outcome?.ok).toBe(true);
    const failed = await service?.txn({
      ops: [
        { verb: 'set', key: '{t}/x', value: bytes('changed') },
        { verb: 'check-not-exists', key: '{t}/y' },
      ],
    });
    expect(failed?.ok).toBe(false);
    expect(text((await service?.kvGet({ ...consistent, key: '{t}/x' }))?.value?.value)).toBe('1');
  });
});

describe('blocking queries', () => {
  it('a blocking get returns when the key changes, forwarded from a follower', async () => {
    const key = keyInGroup('block/', 3);
    const follower = cluster.followerOf(3);
    const first = await follower.runtime.service.kvPut(put(key, 'before'));
    const blocked = follower.runtime.service.kvGet({
      ...leaderRead,
      key,
      block: { index: first.index, waitMs: 10_000 },
    });
    const written = await cluster.servers[0]?.runtime.service.kvPut(put(key, 'after'));
    const woke = await blocked;
    expect(text(woke.value?.value)).toBe('after');
    expect(woke.meta.index).toBeGreaterThanOrEqual(written?.index ?? Number.POSITIVE_INFINITY);
  });

  it('a blocking list over every group wakes when one group changes', async () => {
    const service = cluster.servers[1]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const before = await service.kvList({ ...leaderRead, prefix: 'watched/' });
    const blocked = service.kvList({
      ...leaderRead,
      prefix: 'watched/',
      block: { index: before.meta.index, waitMs: 10_000 },
    });
    await cluster.servers[0]?.runtime.service.kvPut(put(keyInGroup('watched/', 2), 'new'));
    const woke = await blocked;
    expect(woke.value.length).toBe(before.value.length + 1);
    expect(woke.meta.index).toBeGreaterThan(before.meta.index);
  });

  it('a blocking query with nothing changing returns at the wait with the same index', async () => {
    const service = cluster.servers[0]?.runtime.service;
    const key = keyInGroup('quiet/', 0);
    const now = await service?.kvGet({ ...leaderRead, key });
    const started = Date.now();
    const waited = await service?.kvGet({
      ...leaderRead,
      key,
      block: { index: now?.meta.index ?? 0, waitMs: 200 },
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(waited?.meta.index).toBe(now?.meta.index);
  });
});

describe('sessions and locks', () => {
  const lockSpec = { name: 'test', node: 's1', ttlSeconds: 10, behavior: 'release' as const, lockDelayMs: 0 };

  it('a session exists in every group, and a lock taken in any group releases when it is destroyed', async () => {
    const service = cluster.servers[0]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const { id } = await service.sessionCreate(lockSpec);
    const key = keyInGroup('locks/', 3);
    const acquired = await service.kvPut({ ...put(key, 'me'), acquire: id });
    expect(acquired.ok).toBe(true);
    const entry = (await service.kvGet({ ...consistent, key })).value;
    expect(entry?.session).toBe(id);
    expect(entry?.lockIndex).toBe(1);
    const { id: rival } = await service.sessionCreate(lockSpec);
    expect((await service.kvPut({ ...put(key, 'rival'), acquire: rival })).ok).toBe(false);
    await service.sessionDestroy({ id });
    expect((await service.kvGet({ ...consistent, key })).value?.session).toBeNull();
    expect((await service.sessionInfo({ ...consistent, id })).value).toBeNull();
    expect((await service.kvPut({ ...put(key, 'rival'), acquire: rival })).ok).toBe(true);
    expect((await service.kvGet({ ...consistent, key })).value?.lockIndex).toBe(2);
  });

  it('acquiring with an unknown session is a typed error and writes nothing', async () => {
    const service = cluster.servers[1]?.runtime.service;
    const attempt = service?.kvPut({
      ...put('locks/none', 'x'),
      acquire: '00000000-0000-0000-0000-000000000000',
    });
    await expect(attempt).rejects.toBeInstanceOf(ConclaveError);
    await expect(attempt).rejects.toMatchObject({ code: 'INVALID_SESSION' });
    expect((await service?.kvGet({ ...consistent, key: 'locks/none' }))?.value).toBeNull();
  });

  it('the leader of group 0 expires a session after TTL x 2 without renewal, and a renewal defers it', async () => {
    const service = cluster.servers[2]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const { id } = await service.sessionCreate({ ...lockSpec, ttlSeconds: 10 });
    const key = keyInGroup('ttl/', 1);
    expect((await service.kvPut({ ...put(key, 'held'), acquire: id })).ok).toBe(true);
    const keeper = cluster.leaderOf(0)?.runtime.sessions;
    if (keeper === undefined) throw new Error('no leader for group 0');
    await keeper.sweep(); // arms the deadline
    clock += 15_000;
    expect(await service.sessionRenew({ id })).not.toBeNull();
    clock += 15_000;
    await keeper.sweep();
    expect((await service.sessionInfo({ ...consistent, id })).value).not.toBeNull();
    clock += 21_000;
    await keeper.sweep();
    expect((await service.sessionInfo({ ...consistent, id })).value).toBeNull();
    expect((await service.kvGet({ ...consistent, key })).value?.session).toBeNull();
  });

  it('a new leader of group 0 re-arms every TTL in full, so a leader change never expires a session early', async () => {
    const service = cluster.servers[1]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const { id } = await service.sessionCreate({ ...lockSpec, ttlSeconds: 10 });
    const oldLeader = cluster.leaderOf(0);
    if (oldLeader === undefined) throw new Error('no leader for group 0');
    await oldLeader.runtime.sessions.sweep(); // armed at the old leader: due in 20 s
    clock += 15_000;
    const successor = cluster.servers.find((s) => s !== oldLeader);
    if (successor === undefined) throw new Error('no other server');
    oldLeader.host.group(0).raw.transferLeader(successor.id);
    const newLeader = await eventually(() => cluster.leaderOf(0) === successor && successor, {
      timeoutMs: 5_000,
    });
    await newLeader.runtime.sessions.sweep(); // re-armed in full: due in 20 s from now
    clock += 15_000; // 30 s after the last renewal, but only 15 s into the new leader's term
    await newLeader.runtime.sessions.sweep();
    expect((await service.sessionInfo({ ...consistent, id })).value).not.toBeNull();
    clock += 6_000;
    await newLeader.runtime.sessions.sweep();
    expect((await service.sessionInfo({ ...consistent, id })).value).toBeNull();
  });

  it('after an invalidation the key stays locked for the session lock-delay', async () => {
    const service = cluster.servers[0]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const { id } = await service.sessionCreate({ ...lockSpec, lockDelayMs: 15_000 });
    const { id: next } = await service.sessionCreate(lockSpec);
    const key = keyInGroup('delay/', 2);
    expect((await service.kvPut({ ...put(key, 'a'), acquire: id })).ok).toBe(true);
    await service.sessionDestroy({ id });
    expect((await service.kvPut({ ...put(key, 'b'), acquire: next })).ok).toBe(false);
    clock += 15_001;
    expect((await service.kvPut({ ...put(key, 'b'), acquire: next })).ok).toBe(true);
  });
});

describe('the internal call endpoint', () => {
  it('refuses garbage and ill-formed commands with 400, and applies nothing', async () => {
    const server = cluster.servers[0];
    if (server === undefined) throw new Error('no server');
    const before = server.host.group(0).raw.status().commit;
    const send = (payload: Buffer) =>
      server.app.inject({
        method: 'POST',
        url: internalCallPath(0),
        headers: { 'content-type': msgpackContentType },
        payload,
      });
    expect((await send(Buffer.from([0xc1, 0xff, 0x00]))).statusCode).toBe(400);
    const bad = await send(
      callPackr.pack({ kind: 'apply', command: { type: 'kv', op: { verb: 'explode', key: 'k' } } }),
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'BAD_REQUEST' });
    expect((await send(callPackr.pack({ kind: 'apply', command: { type: 'mystery' } }))).statusCode).toBe(
      400,
    );
    expect(server.host.group(0).raw.status().commit).toBe(before);
  });
});
