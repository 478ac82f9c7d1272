import { PassThrough, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsmCommand } from '../fsm/index.js';
import { expectApply } from './calls.js';
import { defaultReaperLimits, RestoreReaper, stagingOf } from './restore-reaper.js';
import { eventually, startTestCluster, type TestCluster, type TestServer } from './testing/cluster.js';

const idleMs = defaultReaperLimits.restoreStagingIdleMs;
let clock = 5_000_000;
let cluster: TestCluster;
let server: TestServer;

beforeAll(async () => {
  cluster = await startTestCluster({ size: 1, groupCount: 2, now: () => clock });
  await eventually(() => [0, 1].every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
  const only = cluster.servers[0];
  if (only === undefined) throw new Error('no server');
  server = only;
}, 30_000);

afterAll(async () => {
  await cluster.close();
});

/** Proposed as a client of the internal endpoint would: through Raft, with no restore running here. */
async function propose(groupId: number, command: FsmCommand): Promise<void> {
  const reply = expectApply(await server.runtime.router.call({ groupId, call: { kind: 'apply', command } }));
  expect(reply.result).toEqual({ type: 'restore', ok: true, error: null });
}

/** Group 1's own header part: a valid first chunk. */
function headerPart(groupId: number): Uint8Array {
  const part = server.machines.fsm(groupId).openSnapshotParts().next();
  if (part === null) throw new Error('no header part');
  return part;
}

const staged = (groupId: number) => stagingOf(server.machines.fsm(groupId));

describe('the restore reaper', () => {
  it('aborts a staging left unchanged for restoreStagingIdleMs through Raft, and not before', async () => {
    const { reaper } = server.runtime;
    await propose(1, { type: 'restore-begin', restoreId: 'orphan' });
    clock += idleMs - 1;
    // A chunk is a change: the staging's idle time starts again.
    await propose(1, { type: 'restore-chunk', restoreId: 'orphan', seq: 0, data: headerPart(1) });
    clock += idleMs - 1;
    expect(await reaper.check()).toEqual([]);
    expect(staged(1)).toEqual({ restoreId: 'orphan', parts: 1 });
    clock += 1;
    expect(await reaper.check()).toEqual(['orphan']);
    expect(staged(1)).toBeNull();
    // Group 0 had nothing staged: nothing to abort, and nothing proposed for it.
    expect(staged(0)).toBeNull();
  });

  it('spares the staging of a restore running on this server, however long it waits', async () => {
    const { reaper, snapshots } = server.runtime;
    const archive = await buffer(snapshots.save({ clusterId: 'solo', stale: false }));
    const upload = new PassThrough();
    // Half the archive, then nothing: the restore waits (bodyIdleMs is real time, 60 s).
    upload.write(archive.subarray(0, Math.floor(archive.length / 2)));
    const restoring = snapshots.restore(upload);
    const own = await eventually(() => staged(0) ?? undefined, { timeoutMs: 10_000 });
    clock += 3 * idleMs;
    expect(await reaper.check()).toEqual([]);
    expect(staged(0)?.restoreId).toBe(own.restoreId);
    upload.destroy(new Error('the client went away'));
    await expect(restoring).rejects.toThrow('the client went away');
    expect(staged(0)).toBeNull();
  });

  it('logs one line per abort', async () => {
    const lines: { msg: string; groupId: number; restoreId: string }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text));
        done();
      },
    });
    // Built after the begin, so its idle time counts from now, as after a restart.
    await propose(0, { type: 'restore-begin', restoreId: 'left-behind' });
    const reaper = new RestoreReaper({
      host: server.host,
      caller: server.runtime.router,
      staging: (g) => stagingOf(server.machines.fsm(g)),
      ownsStaging: () => false,
      now: () => clock,
      logger: pino({ level: 'info' }, stream),
    });
    clock += idleMs;
    expect(await reaper.check()).toEqual(['left-behind']);
    expect(staged(0)).toBeNull();
    expect(lines.map((l) => [l.msg, l.groupId, l.restoreId])).toEqual([
      ['aborted an orphaned restore staging', 0, 'left-behind'],
    ]);
    // Looked at and found clean: a later pass reads nothing and aborts nothing.
    clock += idleMs;
    expect(await reaper.check()).toEqual([]);
    expect(lines).toHaveLength(1);
  });
});
