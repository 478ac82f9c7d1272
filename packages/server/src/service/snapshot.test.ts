import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { groupOfKey } from '@conclave/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArchiveMeta, type ArchivePart, archiveStream, readArchiveStream } from '../archive/index.js';
import { ConclaveError } from '../errors.js';
import type { ConclaveFsm, FsmCommand } from '../fsm/index.js';
import { restoreBatchBytesMax, restoreBatchPartsMax } from '../fsm/restore-wire.js';
import { decodeSnapshot } from '../fsm/snapshot-codec.js';
import { expectReply, type GroupCall } from './calls.js';
import { type SnapshotCaller, type SnapshotLimits, SnapshotService } from './snapshot.js';
import { defaultCursorLimits } from './snapshot-cursors.js';
import { eventually, startTestCluster, type TestCluster } from './testing/cluster.js';
import type { KvEntry, SessionEntry } from './types.js';

const groupCount = 3;
const archiveBytesMax = 256 * 1024 * 1024;
const bytes = (text: string) => new TextEncoder().encode(text);
const put = (key: string, value: string | Uint8Array, acquire: string | null = null) => ({
  key,
  value: typeof value === 'string' ? bytes(value) : value,
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

/** An archive read back whole (test data is small): its meta and each group's parts in order. */
interface ReadBack {
  readonly meta: ArchiveMeta;
  readonly parts: readonly ArchivePart[][];
}

async function readBack(gz: Uint8Array, count = groupCount): Promise<ReadBack> {
  const parts: ArchivePart[][] = [];
  const meta = await readArchiveStream(Readable.from([gz]), {
    archiveBytesMax,
    groupCount: count,
    onPart: (part) => {
      parts[part.groupId] ??= [];
      parts[part.groupId]?.push(part);
    },
  });
  return { meta, parts };
}

/** The archive rewritten from its parts: `edit` may drop groups or change a group's parts. */
function rewritten(
  back: ReadBack,
  edit: { groups?: number; parts?: (groupId: number, parts: Uint8Array[]) => Uint8Array[] } = {},
): Promise<Buffer> {
  const groups = back.meta.groups.slice(0, edit.groups ?? back.meta.groups.length);
  async function* sources() {
    for (const group of groups) {
      const data = (back.parts[group.groupId] ?? []).map((part) => part.data);
      const parts = edit.parts?.(group.groupId, data) ?? data;
      yield { ...group, parts: Readable.from(parts) };
    }
  }
  return buffer(archiveStream({ clusterId: back.meta.clusterId, createdAtMs: 0, groups: sources() }));
}

/** Everything a group holds that a restore must carry over, in key order. */
function contents(state: { kvs: readonly KvEntry[]; sessions: readonly SessionEntry[] }) {
  return {
    kvs: state.kvs.map((e) => [e.key, Buffer.from(e.value).toString('hex'), e.flags, e.lockIndex, e.session]),
    sessions: state.sessions.map((s) => [s.id, s.name, s.node, s.ttlSeconds, s.behavior, s.lockDelayMs]),
  };
}

const fsmContents = (fsm: ConclaveFsm) =>
  contents({ kvs: fsm.list(''), sessions: fsm.listSessions({ node: null }) });

const archivedContents = (back: ReadBack, groupId: number) => {
  const rows = back.parts[groupId] ?? [];
  return contents({ kvs: rows.flatMap((p) => p.rows.kvs), sessions: rows.flatMap((p) => p.rows.sessions) });
};

/**
 * Every server's contents, table index and restore staging (whether any) of every group,
 * once all servers applied alike.
 */
async function settledState(cluster: TestCluster) {
  const applied = (g: number) => cluster.servers.map((s) => s.machines.fsm(g).appliedIndex());
  await eventually(() => [0, 1, 2].every((g) => new Set(applied(g)).size === 1), { timeoutMs: 10_000 });
  return cluster.servers.map((s) =>
    [0, 1, 2].map((g) => {
      const fsm = s.machines.fsm(g);
      return { ...fsmContents(fsm), kvIndex: fsm.kvIndex(), staged: stagedIn(fsm) };
    }),
  );
}

const stagedIn = (fsm: ConclaveFsm) => decodeSnapshot(fsm.snapshot()).restoreStaging !== null;

const openCursors = (cluster: TestCluster) =>
  cluster.servers.map((s) => s.runtime.local.snapshotCursors.openCount);

async function refusal(promise: Promise<unknown>): Promise<ConclaveError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConclaveError);
  return error as ConclaveError;
}

describe('user snapshots on a 3-server cluster', () => {
  let saved: Buffer;
  let back: ReadBack;
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
    // Let some load land first, then save through a server that does not lead group 1.
    await eventually(() => acked.length >= 20, { timeoutMs: 10_000 });
    const follower = source.followerOf(1);
    saved = await buffer(follower.runtime.snapshots.save({ clusterId: 'src', stale: false }));
    writing = false;
    await load;

    back = await readBack(saved);
    expect(back.meta.clusterId).toBe('src');
    for (const group of back.meta.groups) {
      expect(group.voters).toEqual(['s1', 's2', 's3']);
      const keys = new Set(back.parts[group.groupId]?.flatMap((p) => p.rows.kvs.map((e) => e.key)));
      expect(keys.size).toBe(group.keys);
      // Every write acknowledged at or before the group's index is in it; none after.
      for (const write of acked.filter((w) => w.groupId === group.groupId)) {
        expect(keys.has(write.key)).toBe(write.index <= group.index);
      }
      for (let i = 0; i < 120; i++) {
        const key = `base/${i}`;
        if (groupOfKey({ key, groupCount }) === group.groupId) expect(keys.has(key)).toBe(true);
      }
    }
    expect(acked.length).toBeGreaterThan(20);
    // Every cursor closed itself once read to the end: nothing pins a view of the state.
    expect(openCursors(source)).toEqual([0, 0, 0]);
  }, 30_000);

  it('reads a cursor on the server that opened it, even after that server lost the leadership', async () => {
    const follower = source.followerOf(1);
    const leader = source.leaderOf(1);
    if (leader === undefined) throw new Error('no leader');
    const opened = expectReply(
      await follower.runtime.router.call({ groupId: 1, call: { kind: 'snapshot-open', stale: false } }),
      'snapshot-open',
    );
    expect(opened.nodeId).toBe(leader.id);
    expect(leader.runtime.local.snapshotCursors.openCount).toBe(1);

    const next = source.servers.find((s) => s.id !== leader.id && s.id !== follower.id) ?? follower;
    await follower.runtime.operator.transferLeader({ to: next.id, groupId: 1 });
    await eventually(() => source.leaderOf(1)?.id === next.id, { timeoutMs: 5_000 });

    // Forwarded by id to the former leader, which still holds the cursor.
    const read: GroupCall = { kind: 'snapshot-read', cursorId: opened.cursorId, bytesMax: 64 * 1024 };
    let parts = 0;
    for (let done = false; !done; ) {
      const reply = expectReply(
        await follower.runtime.router.callServer({ nodeId: opened.nodeId, groupId: 1, call: read }),
        'snapshot-read',
      );
      done = reply.done;
      parts += reply.parts.length;
    }
    expect(parts).toBeGreaterThan(1);
    expect(leader.runtime.local.snapshotCursors.openCount).toBe(0);

    // A cursor that is not there comes back as its own typed error, across HTTP too.
    const gone = await refusal(
      follower.runtime.router.callServer({ nodeId: leader.id, groupId: 1, call: read }),
    );
    expect(gone.code).toBe('SNAPSHOT_CURSOR_GONE');
    expect(gone.status).toBe(410);
  }, 15_000);

  it('saves with ?stale from one server alone, at its own applied indexes', async () => {
    const server = source.servers[2];
    if (server === undefined) throw new Error('no server');
    const stale = await readBack(
      await buffer(server.runtime.snapshots.save({ clusterId: 'src', stale: true })),
    );
    for (const group of stale.meta.groups) {
      expect(group.index).toBeLessThanOrEqual(server.machines.fsm(group.groupId).appliedIndex());
    }
    expect(openCursors(source)).toEqual([0, 0, 0]);
  });

  it('refuses a corrupt or mismatched archive, early or late, and changes nothing', async () => {
    const server = target.followerOf(0);
    await server.runtime.service.kvPut(put('before/restore', 'kept'));
    const before = await settledState(target);
    expect(before.flat().every((group) => !group.staged)).toBe(true);
    const flipped = (at: number) => {
      const copy = Buffer.from(saved);
      copy[at] = (copy[at] ?? 0) ^ 0x10;
      return copy;
    };
    const cases: Record<string, Uint8Array> = {
      empty: Buffer.alloc(0),
      'a flipped byte mid-way': flipped(Math.floor(saved.length / 2)),
      'cut short': saved.subarray(0, saved.length - 100),
      // Only the gzip trailer's CRC is wrong: every part is staged before it is found.
      'a bad CRC at the very end': flipped(saved.length - 6),
      'two groups of three': await rewritten(back, { groups: 2 }),
      // Sums consistent (the writer computed them), but the last group lacks its last part.
      'the last group missing its last part': await rewritten(back, {
        parts: (groupId, parts) => (groupId === groupCount - 1 ? parts.slice(0, -1) : parts),
      }),
    };
    for (const [name, bad] of Object.entries(cases)) {
      const refused = await refusal(server.runtime.snapshots.restore(Readable.from([bad])));
      expect(refused.code, name).toBe('SNAPSHOT_ARCHIVE_INVALID');
    }
    expect(await settledState(target)).toEqual(before);
    const kept = await server.runtime.service.kvGet({
      consistency: 'consistent',
      maxStaleMs: null,
      block: null,
      key: 'before/restore',
    });
    expect(kept.value?.key).toBe('before/restore');
  }, 30_000);

  it('refuses a second restore on the same server while one runs', async () => {
    const server = target.followerOf(1);
    const before = await settledState(target);
    const upload = new PassThrough();
    upload.write(saved.subarray(0, Math.floor(saved.length / 2)));
    const first = server.runtime.snapshots.restore(upload);
    // Group 0 is being staged on every server: the first restore is under way.
    await eventually(() => target.servers.every((s) => stagedIn(s.machines.fsm(0))), { timeoutMs: 10_000 });
    const second = await refusal(server.runtime.snapshots.restore(Readable.from([saved])));
    expect(second.code).toBe('RESTORE_IN_PROGRESS');
    expect(second.status).toBe(409);
    // The first client goes away: its restore fails and what it staged is dropped.
    upload.destroy(new Error('the client went away'));
    await expect(first).rejects.toThrow('the client went away');
    const after = await settledState(target);
    expect(after.flat().every((group) => !group.staged)).toBe(true);
    expect(after).toEqual(before);
  }, 30_000);

  it('restores into a fresh cluster through Raft: every server of every group holds the archive', async () => {
    const server = target.followerOf(2);
    const outcome = await server.runtime.snapshots.restore(Readable.from([saved]));
    expect(outcome.groups.map((g) => g.groupId)).toEqual([0, 1, 2]);
    expect(outcome.groups.map((g) => g.keys)).toEqual(back.meta.groups.map((g) => g.keys));
    for (const s of target.servers) {
      for (let g = 0; g < groupCount; g++) {
        const index = outcome.groups[g]?.index ?? 0;
        await eventually(() => s.machines.fsm(g).appliedIndex() >= index, { timeoutMs: 10_000 });
        expect(fsmContents(s.machines.fsm(g))).toEqual(archivedContents(back, g));
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

describe('snapshot cursors and memory on one server', () => {
  let clock = 1_000_000;
  let solo: TestCluster;

  beforeAll(async () => {
    solo = await startTestCluster({ size: 1, groupCount: 1, now: () => clock });
    await eventually(() => solo.leaderOf(0), { timeoutMs: 10_000 });
  }, 30_000);

  afterAll(async () => {
    await solo.close();
  });

  it('forgets a cursor idle past cursorIdleMs: its read is refused with SNAPSHOT_CURSOR_GONE', async () => {
    const server = solo.servers[0];
    if (server === undefined) throw new Error('no server');
    const { router } = server.runtime;
    const opened = expectReply(
      await router.call({ groupId: 0, call: { kind: 'snapshot-open', stale: false } }),
      'snapshot-open',
    );
    const read: GroupCall = { kind: 'snapshot-read', cursorId: opened.cursorId, bytesMax: 1 };
    const readOnce = () => router.callServer({ nodeId: opened.nodeId, groupId: 0, call: read });
    // A read within the limit keeps it open; the clock is the server's injected one.
    clock += defaultCursorLimits.cursorIdleMs;
    expect(expectReply(await readOnce(), 'snapshot-read').parts).toHaveLength(1);
    clock += defaultCursorLimits.cursorIdleMs + 1;
    expect((await refusal(readOnce())).code).toBe('SNAPSHOT_CURSOR_GONE');
    expect(server.runtime.local.snapshotCursors.openCount).toBe(0);
  });

  it('holds at most one read of parts at a time while saving', async () => {
    const server = solo.servers[0];
    if (server === undefined) throw new Error('no server');
    // Over readBytesMax in all, so the default save needs several reads.
    const value = new Uint8Array(100 * 1024).fill(7);
    const values = Math.ceil((defaultCursorLimits.readBytesMax * 1.25) / value.byteLength);
    for (let i = 0; i < values; i++) await server.runtime.service.kvPut(put(`big/${i}`, value));

    // One part per read: the peak is the largest part, never two.
    const narrow = new SnapshotService({
      host: server.host,
      caller: server.runtime.router,
      fsm: (g) => server.machines.fsm(g),
      limits: { readBytes: 1 },
    });
    const narrowBack = await readBack(await buffer(narrow.save({ clusterId: 'solo', stale: false })), 1);
    const sizes = (narrowBack.parts[0] ?? []).map((p) => p.data.byteLength);
    expect(sizes.length).toBeGreaterThan(4);
    expect(narrow.heldBytesPeak).toBe(Math.max(...sizes));

    const wide = server.runtime.snapshots;
    const wideBack = await readBack(await buffer(wide.save({ clusterId: 'solo', stale: false })), 1);
    const total = wideBack.meta.groups[0]?.bytes ?? 0;
    expect(total).toBeGreaterThan(defaultCursorLimits.readBytesMax);
    expect(wide.heldBytesPeak).toBeLessThanOrEqual(defaultCursorLimits.readBytesMax);
    expect(wide.heldBytesPeak).toBeGreaterThan(0);
  }, 30_000);
});

describe('restore in batches', () => {
  const batchGroups = 2;
  let cluster: TestCluster;
  let archive: Buffer;
  let archived: ReadBack;

  /** Values that do not compress, so the archive's bytes track its parts' bytes. */
  function noise(seed: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let x = seed * 2654435761 + 1;
    for (let i = 0; i < length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  }

  beforeAll(async () => {
    cluster = await startTestCluster({ size: 3, groupCount: batchGroups });
    await eventually(() => [0, 1].every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
    const service = cluster.followerOf(0).runtime.service;
    // About 3.6 MiB a group: a dozen parts of about 300 KiB each (a chunk closes at 256 KiB of rows).
    for (let i = 0; i < 72; i++) await service.kvPut(put(`batch/${i}`, noise(i + 1, 100 * 1024)));
    archive = await buffer(cluster.followerOf(1).runtime.snapshots.save({ clusterId: 'b', stale: false }));
    archived = await readBack(archive, batchGroups);
  }, 60_000);

  afterAll(async () => {
    await cluster.close();
  });

  /** A restore's proposals as they leave the service: what each carried, and how many were in flight at once. */
  interface Tally {
    readonly proposals: { groupId: number; type: string; seq: number; parts: number; bytes: number }[];
    inFlightPeak: number;
  }

  /** The restore service of a follower of group 0 (its proposals are forwarded over HTTP), counting proposals. */
  function counted(options: {
    limits?: Partial<SnapshotLimits>;
    hold?: (command: FsmCommand) => Promise<void>;
  }): { service: SnapshotService; tally: Tally } {
    const server = cluster.followerOf(0);
    const inner = server.runtime.router;
    const tally: Tally = { proposals: [], inFlightPeak: 0 };
    let inFlight = 0;
    const caller: SnapshotCaller = {
      callServer: (o) => inner.callServer(o),
      async call(o) {
        const { call } = o;
        if (call.kind !== 'apply' || !call.command.type.startsWith('restore-')) return inner.call(o);
        const command = call.command;
        inFlight++;
        tally.inFlightPeak = Math.max(tally.inFlightPeak, inFlight);
        try {
          const parts =
            command.type === 'restore-batch'
              ? command.parts
              : command.type === 'restore-chunk'
                ? [command.data]
                : [];
          tally.proposals.push({
            groupId: o.groupId,
            type: command.type,
            seq: 'seq' in command ? (command.seq ?? -1) : -1,
            parts: parts.length,
            bytes: parts.reduce((sum, p) => sum + p.byteLength, 0),
          });
          await options.hold?.(command);
          return await inner.call(o);
        } finally {
          inFlight--;
        }
      },
    };
    const service = new SnapshotService({
      host: server.host,
      caller,
      fsm: (g) => server.machines.fsm(g),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    return { service, tally };
  }

  async function expectRestored(): Promise<void> {
    for (const s of cluster.servers) {
      for (let g = 0; g < batchGroups; g++) {
        const index = cluster.leaderOf(g)?.machines.fsm(g).appliedIndex() ?? 0;
        await eventually(() => s.machines.fsm(g).appliedIndex() >= index, { timeoutMs: 10_000 });
        expect(fsmContents(s.machines.fsm(g))).toEqual(archivedContents(archived, g));
      }
    }
  }

  it('proposes several consecutive parts of one group per Raft entry, one proposal in flight at a time', async () => {
    const partCounts = archived.meta.groups.map((g) => g.parts);
    const parts = partCounts.reduce((sum, n) => sum + n, 0);
    expect(Math.min(...partCounts)).toBeGreaterThan(6);

    const { service, tally } = counted({});
    await service.restore(Readable.from([archive]));
    const batches = tally.proposals.filter((p) => p.type === 'restore-batch');
    expect(tally.proposals.filter((p) => p.type === 'restore-chunk')).toEqual([]);
    // Fewer Raft rounds than parts: at 300 KiB a part, three go in one entry.
    expect(batches.length).toBeLessThan(parts / 2);
    expect(Math.max(...batches.map((b) => b.parts))).toBeGreaterThan(1);
    for (const b of batches) expect(b.bytes).toBeLessThanOrEqual(restoreBatchBytesMax);
    // Each group's batches run on from seq 0 to its last part, in order, never mixing groups.
    for (let g = 0; g < batchGroups; g++) {
      const own = batches.filter((b) => b.groupId === g);
      let next = 0;
      for (const b of own) {
        expect(b.seq).toBe(next);
        next += b.parts;
      }
      expect(next).toBe(partCounts[g]);
    }
    // Forwarded to a remote leader, two proposals at once could apply out of order.
    expect(tally.inFlightPeak).toBe(1);
    await expectRestored();

    // One part per entry, as before batching: a Raft round per part.
    const single = counted({ limits: { restoreBatchPartsMax: 1 } });
    await single.service.restore(Readable.from([archive]));
    expect(single.tally.proposals.filter((p) => p.type === 'restore-batch')).toHaveLength(parts);
    await expectRestored();
  }, 60_000);

  it('reads the archive on while a batch is in flight', async () => {
    /** Archive bytes handed to the service so far, in small slices so little is buffered ahead. */
    let pulled = 0;
    const waiters = new Set<() => void>();
    async function* slices() {
      const sliceBytes = 4096;
      for (let at = 0; at < archive.length; at += sliceBytes) {
        const slice = archive.subarray(at, at + sliceBytes);
        pulled += slice.length;
        for (const wake of waiters) wake();
        yield slice;
      }
    }
    /** Well past what the streams buffer ahead (about 100 KiB), short of a batch (about 900 KiB). */
    const readAheadBytes = 512 * 1024;
    let readAhead: number | null = null;
    const { service } = counted({
      hold: async (command) => {
        if (command.type !== 'restore-batch' || readAhead !== null) return;
        // Hold the first batch until the archive was read on, or the deadline passes.
        const at = pulled;
        await new Promise<void>((resolve) => {
          const wake = () => {
            if (pulled - at < readAheadBytes) return;
            waiters.delete(wake);
            clearTimeout(deadline);
            resolve();
          };
          const deadline = setTimeout(() => {
            waiters.delete(wake);
            resolve();
          }, 5_000);
          waiters.add(wake);
        });
        readAhead = pulled - at;
      },
    });
    await service.restore(Readable.from(slices(), { objectMode: false }));
    expect(readAhead).toBeGreaterThanOrEqual(readAheadBytes);
    await expectRestored();
  }, 60_000);

  it('a batch refused while the archive reads on fails the restore with RESTORE_FAILED and drops every staging', async () => {
    const before = cluster.servers.map((s) => [0, 1].map((g) => fsmContents(s.machines.fsm(g))));
    let batches = 0;
    const inner = cluster.followerOf(0).runtime.router;
    const { service, tally } = counted({
      hold: async (command) => {
        if (command.type !== 'restore-batch' || ++batches !== 2) return;
        // Someone drops this restore's staging: the batch about to go is refused at apply.
        await inner.call({
          groupId: 0,
          call: { kind: 'apply', command: { type: 'restore-abort', restoreId: command.restoreId } },
        });
      },
    });
    const refused = await refusal(service.restore(Readable.from([archive])));
    expect(refused.code).toBe('RESTORE_FAILED');
    expect(refused.message).toMatch(/is not staged/u);
    // Nothing was proposed after the refused batch but the aborts of what was staged.
    const refusedAt = tally.proposals.findIndex((p, i) => p.type === 'restore-batch' && i > 1);
    expect(tally.proposals[refusedAt]?.seq).toBeGreaterThan(0);
    expect(tally.proposals.slice(refusedAt + 1).map((p) => p.type)).toEqual(['restore-abort']);
    await eventually(() => cluster.servers.every((s) => [0, 1].every((g) => !stagedIn(s.machines.fsm(g)))), {
      timeoutMs: 10_000,
    });
    expect(cluster.servers.map((s) => [0, 1].map((g) => fsmContents(s.machines.fsm(g))))).toEqual(before);
  }, 60_000);

  it('refuses a limit past the wire bounds', () => {
    const server = cluster.followerOf(0);
    for (const limits of [
      { restoreBatchBytesMax: restoreBatchBytesMax + 1 },
      { restoreBatchPartsMax: restoreBatchPartsMax + 1 },
      { restoreBatchPartsMax: 0 },
    ]) {
      expect(
        () =>
          new SnapshotService({
            host: server.host,
            caller: server.runtime.router,
            fsm: () => server.machines.fsm(0),
            limits,
          }),
        JSON.stringify(limits),
      ).toThrow(/restoreBatch/u);
    }
  });
});
