import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Archive,
  archiveStream,
  checkGroupState,
  type GroupState,
  readArchive,
} from '../archive/index.js';
import { ConclaveError } from '../errors.js';
import type { ConclaveFsm } from '../fsm/index.js';
import { groupOfKey } from '../host/partition.js';
import { eventually, startTestCluster, type TestCluster } from './testing/cluster.js';

const groupCount = 3;
const archiveBytesMax = 256 * 1024 * 1024;
const bytes = (text: string) => new TextEncoder().encode(text);
const put = (key: string, value: string, acquire: string | null = null) => ({
  key,
  value: bytes(value),
  flags: 7,
  cas: null,
  acquire,
  release: null,
});

let source: TestCluster;
let target: TestCluster;

async function started(): Promise<TestCluster> {
  const cluster = await startTestCluster({ size: 3, groupCount });
  await eventually(() => [...Array(groupCount).keys()].every((g) => cluster.leaderOf(g) !== undefined), {
    timeoutMs: 10_000,
  });
  return cluster;
}

beforeAll(async () => {
  [source, target] = await Promise.all([started(), started()]);
}, 30_000);

afterAll(async () => {
  await Promise.all([source.close(), target.close()]);
});

/** Everything a group holds that a restore must carry over, in key order. */
function contents(fsm: ConclaveFsm | GroupState) {
  const kvs = 'list' in fsm ? fsm.list('') : fsm.kvs;
  const sessions = 'listSessions' in fsm ? fsm.listSessions({ node: null }) : fsm.sessions;
  return {
    kvs: kvs.map((e) => [e.key, Buffer.from(e.value).toString('hex'), e.flags, e.lockIndex, e.session]),
    sessions: sessions.map((s) => [s.id, s.name, s.node, s.ttlSeconds, s.behavior, s.lockDelayMs]),
  };
}

function states(archive: Archive): GroupState[] {
  return archive.groups.map((group) => checkGroupState(group));
}

describe('user snapshots on a 3-server cluster', () => {
  let archive: Archive;
  const acked: { key: string; groupId: number; index: number }[] = [];

  it('saves every group from its leader while writes go on, each group consistent at its index', async () => {
    const service = source.servers[0]?.runtime.service;
    if (service === undefined) throw new Error('no server');
    const { id: session } = await service.sessionCreate({
      name: 'holder',
      node: 'n1',
      ttlSeconds: 0,
      behavior: 'release',
      lockDelayMs: 0,
    });
    for (let i = 0; i < 120; i++) await service.kvPut(put(`base/${i}`, `value ${i}`));
    expect((await service.kvPut(put('locks/a', 'held', session))).ok).toBe(true);

    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) {
        const key = `load/${i}`;
        const { index } = await service.kvPut(put(key, `w${i}`));
        acked.push({ key, groupId: groupOfKey({ key, groupCount }), index });
      }
    })();
    // Let some load land first, then save through a server that leads nothing in particular.
    await eventually(() => acked.length >= 20, { timeoutMs: 10_000 });
    const follower = source.followerOf(1);
    const gz = await buffer(follower.runtime.snapshots.save({ clusterId: 'src', stale: false }));
    writing = false;
    await load;

    archive = readArchive(gz, { archiveBytesMax, groupCount });
    expect(archive.meta.clusterId).toBe('src');
    const decoded = states(archive);
    for (const [groupId, group] of archive.groups.entries()) {
      expect(group.meta.voters).toEqual(['s1', 's2', 's3']);
      const keys = new Set(decoded[groupId]?.kvs.map((e) => e.key));
      // Every write acknowledged at or before the group's index is in it; none after.
      for (const write of acked.filter((w) => w.groupId === groupId)) {
        expect(keys.has(write.key)).toBe(write.index <= group.meta.index);
      }
      for (let i = 0; i < 120; i++) {
        const key = `base/${i}`;
        if (groupOfKey({ key, groupCount }) === groupId) expect(keys.has(key)).toBe(true);
      }
    }
    expect(acked.length).toBeGreaterThan(20);
  }, 30_000);

  it('saves with ?stale from one server alone, at its own applied indexes', async () => {
    const server = source.servers[2];
    if (server === undefined) throw new Error('no server');
    const gz = await buffer(server.runtime.snapshots.save({ clusterId: 'src', stale: true }));
    const stale = readArchive(gz, { archiveBytesMax, groupCount });
    for (const group of stale.groups) {
      expect(group.meta.index).toBeLessThanOrEqual(server.machines.fsm(group.meta.groupId).appliedIndex());
    }
  });

  it('refuses a corrupt or mismatched archive and changes nothing', async () => {
    const server = target.followerOf(0);
    await server.runtime.service.kvPut(put('before/restore', 'kept'));
    const first = source.servers[0];
    if (first === undefined) throw new Error('no server');
    const gz = await buffer(first.runtime.snapshots.save({ clusterId: 'src', stale: true }));
    const applied = () => target.servers.map((s) => [0, 1, 2].map((g) => s.machines.fsm(g).appliedIndex()));
    const before = applied();
    const flipped = Buffer.from(gz);
    flipped[Math.floor(gz.length / 2)] = (flipped[Math.floor(gz.length / 2)] ?? 0) ^ 0x10;
    const twoGroups = await buffer(
      archiveStream({
        clusterId: 'other',
        createdAtMs: 0,
        groups: (async function* () {
          for (const group of archive.groups.slice(0, 2)) {
            yield { ...group.meta, data: group.data };
          }
        })(),
      }),
    );
    for (const bad of [flipped, gz.subarray(0, gz.length - 100), twoGroups]) {
      const refused = await server.runtime.snapshots.restore(bad).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConclaveError);
      expect((refused as ConclaveError).code).toBe('SNAPSHOT_ARCHIVE_INVALID');
    }
    expect(applied()).toEqual(before);
    const kept = await server.runtime.service.kvGet({
      consistency: 'consistent',
      maxStaleMs: null,
      block: null,
      key: 'before/restore',
    });
    expect(kept.value?.key).toBe('before/restore');
  });

  it('restores into a fresh cluster through Raft: every server of every group holds the archive', async () => {
    const expected = states(archive).map(contents);
    const server = target.followerOf(2);
    const outcome = await server.runtime.snapshots.restore(
      await buffer(archiveStream({ clusterId: 'src', createdAtMs: 0, groups: captures(archive) })),
    );
    expect(outcome.groups.map((g) => g.groupId)).toEqual([0, 1, 2]);
    for (const s of target.servers) {
      for (let g = 0; g < groupCount; g++) {
        const index = outcome.groups[g]?.index ?? 0;
        await eventually(() => s.machines.fsm(g).appliedIndex() >= index, { timeoutMs: 10_000 });
        expect(contents(s.machines.fsm(g))).toEqual(expected[g]);
        // The restore is a write at its commit: a blocking query sees the table move.
        expect(s.machines.fsm(g).kvIndex()).toBe(index);
      }
    }
    // The pre-restore key is gone everywhere: the group was replaced, not merged.
    for (const s of target.servers)
      expect(
        s.machines.fsm(groupOfKey({ key: 'before/restore', groupCount })).getKey('before/restore'),
      ).toBeNull();
  }, 30_000);
});

async function* captures(archive: Archive) {
  for (const group of archive.groups) yield { ...group.meta, data: group.data };
}
