/**
 * The host with its WAL fdatasync off the event loop (DurableLog.persistAsync): while a
 * batch's sync is in flight the cores keep taking messages, ticks and proposals, but nothing
 * that depends on the batch happens before it is durable: no acknowledgement leaves, no
 * entry applies, and no second batch starts.
 */
import type { NodeId } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import type { DurableLog, GroupWrite } from './ports.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';
import { type KvHost, kvHost } from './testing/kv-host.js';
import { encodeKvCommand } from './testing/kv-state-machine.js';

const ids = ['s1', 's2', 's3'];

/** Writes at once, as the WAL does; the "fdatasync" completes when the test says. */
class DeferredSyncLog extends MemoryDurableLog {
  readonly pending: { resolve: () => void; writes: readonly GroupWrite[] }[] = [];
  /** Complete every sync at once (elections, set-up), or hold them for the test to release. */
  autoComplete = true;
  asyncCalls = 0;

  persistAsync(writes: readonly GroupWrite[]): Promise<void> {
    if (this.pending.length > 0) throw new Error('a second batch started while one was in flight');
    this.asyncCalls++;
    this.persist(writes, { sync: true });
    if (this.autoComplete) return Promise.resolve();
    return new Promise((resolve) => this.pending.push({ resolve, writes }));
  }

  release(): void {
    for (const { resolve } of this.pending.splice(0)) resolve();
  }
}

function createCluster(options: { groupCount: number }) {
  const net = new LoopbackNetwork();
  const servers = ids.map((id, i) =>
    kvHost({
      id,
      seed: i + 1,
      groupCount: options.groupCount,
      net,
      log: new DeferredSyncLog({ groupCount: options.groupCount, voters: ids }),
    }),
  );
  return { net, servers };
}

type Cluster = ReturnType<typeof createCluster>;
type Server = Cluster['servers'][number];

/** Let every scheduled turn and in-flight message run: yields to the event loop, no timers. */
async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function tickUntil(
  cluster: { servers: readonly KvHost<DurableLog>[] },
  done: () => boolean,
  ticksMax: number,
): Promise<void> {
  for (let tick = 0; tick < ticksMax; tick++) {
    if (done()) return;
    for (const server of cluster.servers) server.host.tick();
    await flush();
  }
  throw new Error(`condition not reached within ${ticksMax} ticks`);
}

function leaderOf<S extends KvHost<DurableLog>>(
  cluster: { servers: readonly S[] },
  groupId: number,
): S | undefined {
  const leaders = cluster.servers.filter((s) => s.host.group(groupId).raw.status().role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

async function electedCluster(groupCount: number): Promise<{ cluster: Cluster; leader: Server }> {
  const cluster = createCluster({ groupCount });
  await tickUntil(cluster, () => leaderOf(cluster, 0) !== undefined, 200);
  const leader = leaderOf(cluster, 0);
  if (leader === undefined) throw new Error('no leader');
  return { cluster, leader };
}

const put = (key: string, value: string) =>
  encodeKvCommand({ op: 'put', key, value: new TextEncoder().encode(value) });

const has = (server: KvHost<DurableLog>, key: string, groupId = 0) =>
  server.machines.get(groupId)?.get(key) !== undefined;

function followersOf(cluster: Cluster, leader: Server): Server[] {
  return cluster.servers.filter((s) => s !== leader);
}

describe('MultiRaftHost with an asynchronous fdatasync', () => {
  it('sends no follower acknowledgement until its write is durable, so nothing commits early', async () => {
    const { cluster, leader } = await electedCluster(1);
    const followers = followersOf(cluster, leader);
    for (const follower of followers) follower.log.autoComplete = false;

    const proposed = leader.host.propose({ groupId: 0, data: put('k', 'v') });
    await flush();
    // Both followers have written the entry and wait on their syncs: no ack has left them.
    for (const follower of followers) expect(follower.log.pending).toHaveLength(1);
    expect(leader.host.group(0).raw.status().commit).toBeLessThan(
      leader.host.group(0).raw.status().lastIndex,
    );
    expect(cluster.servers.some((s) => has(s, 'k'))).toBe(false);

    // One follower's sync completes: leader + it are a quorum, and the entry commits.
    followers[0]?.log.release();
    const { index } = await proposed;
    expect(leader.host.group(0).raw.status().commit).toBeGreaterThanOrEqual(index);
    expect(has(leader, 'k')).toBe(true);
    followers[1]?.log.release();
  });

  it('applies nothing on a server until its own write is durable, then applies in order', async () => {
    const { cluster, leader } = await electedCluster(1);
    leader.log.autoComplete = false;
    const first = leader.host.propose({ groupId: 0, data: put('a', '1') });
    await flush();
    expect(leader.log.pending).toHaveLength(1);
    // The followers acknowledged (a leader's appends may leave before its own write), so
    // the entry is committed, but the leader may not apply it before its own sync.
    await tickUntil(cluster, () => followersOf(cluster, leader).every((s) => has(s, 'a')), 20);
    expect(has(leader, 'a')).toBe(false);

    // Proposals made while the sync is in flight wait, and then go as one batch.
    const callsBefore = leader.log.asyncCalls;
    const more = ['b', 'c', 'd'].map((key) => leader.host.propose({ groupId: 0, data: put(key, key) }));
    await flush();
    expect(leader.log.asyncCalls).toBe(callsBefore);
    leader.log.release();
    await flush();
    // The next batch holds all three proposals: one write, one sync.
    expect(leader.log.asyncCalls).toBe(callsBefore + 1);
    expect(leader.log.pending[0]?.writes[0]?.entries).toHaveLength(3);
    leader.log.autoComplete = true;
    leader.log.release();
    await first;
    const indexes = (await Promise.all(more)).map((r) => r.index);
    expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
    expect(['a', 'b', 'c', 'd'].every((key) => has(leader, key))).toBe(true);
  });

  it("keeps sending a leader's heartbeats while its sync is in flight, so a slow disk calls no election", async () => {
    const { cluster, leader } = await electedCluster(1);
    const termBefore = leader.host.group(0).raw.status().term;
    leader.log.autoComplete = false;
    const proposed = leader.host.propose({ groupId: 0, data: put('x', 'y') });
    await flush();
    expect(leader.log.pending).toHaveLength(1);
    // Far past an election timeout with the leader's write held: its heartbeats still
    // leave (RawNode.takeMessages), so no follower campaigns and it keeps its quorum.
    for (let tick = 0; tick < 60; tick++) {
      for (const server of cluster.servers) server.host.tick();
      await flush(4);
    }
    expect(leader.host.group(0).raw.status().role).toBe('leader');
    for (const server of cluster.servers) expect(server.host.group(0).raw.status().term).toBe(termBefore);
    leader.log.autoComplete = true;
    leader.log.release();
    await proposed;
    expect(has(leader, 'x')).toBe(true);
  });

  it('stop() leaves a write in flight alone: writesSettled waits for it, and nothing applies after', async () => {
    const { leader } = await electedCluster(1);
    leader.log.autoComplete = false;
    const proposed = leader.host.propose({ groupId: 0, data: put('late', 'v') });
    await flush();
    expect(leader.log.pending).toHaveLength(1);
    leader.host.stop();
    await expect(proposed).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    let settled = false;
    const settling = leader.host.writesSettled().then(() => {
      settled = true;
    });
    await flush();
    expect(settled).toBe(false);
    leader.log.release();
    await settling;
    await flush();
    expect(has(leader, 'late')).toBe(false);
  });

  it("does not start its own snapshot while a leader's snapshot is being installed (the log's floor moved first)", async () => {
    const net = new LoopbackNetwork();
    const servers = ids.map((id, i) =>
      kvHost({
        id,
        seed: i + 1,
        groupCount: 1,
        net,
        log: new DeferredSyncLog({ groupCount: 1, voters: ids }),
        // Small thresholds and a short interval: a follower's own snapshot falls due often.
        limits: { snapshotThresholdEntries: 20, snapshotTrailingEntries: 0, snapshotIntervalTicks: 3 },
      }),
    );
    const cluster = { net, servers };
    await tickUntil(cluster, () => leaderOf(cluster, 0) !== undefined, 200);
    const leader = leaderOf(cluster, 0);
    const follower = servers.find((s) => s !== leader);
    if (leader === undefined || follower === undefined) throw new Error('no leader');
    for (let i = 0; i < 3; i++) await leader.host.propose({ groupId: 0, data: put(`a${i}`, 'v') });
    // The follower misses enough that the leader compacts past it: it will need a snapshot.
    net.setDown(follower.id, true);
    for (let i = 0; i < 60; i++) await leader.host.propose({ groupId: 0, data: put(`b${i}`, 'v') });
    for (let tick = 0; tick < 10; tick++) {
      for (const s of servers) if (s !== follower) s.host.tick();
      await flush();
    }
    expect(leader.host.group(0).logFirstIndex).toBeGreaterThan(follower.host.group(0).raw.status().lastIndex);
    follower.log.autoComplete = false;
    net.setDown(follower.id, false);
    const installing = () =>
      follower.log.pending.some((p) =>
        p.writes.some((w) => w.snapshot !== null && w.snapshot.metadata.index > 0),
      );
    for (let tick = 0; tick < 40 && !installing(); tick++) {
      for (const s of servers) if (s !== follower) s.host.tick();
      await flush();
    }
    expect(installing()).toBe(true);
    // The install's fdatasync is slow; the follower's ticks go on, and its interval passes.
    for (let tick = 0; tick < 10; tick++) {
      follower.host.tick();
      await flush();
    }
    follower.log.autoComplete = true;
    follower.log.release();
    await tickUntil(cluster, () => has(follower, 'b59'), 50);
    expect(follower.host.group(0).lastSnapshot.index).toBeGreaterThan(3);
  });

  it('converges under syncs completing in random order and partitions (seeded)', async () => {
    for (const seed of [1, 2, 3, 4, 5]) await randomRun(seed);
  });
});

/** A small deterministic PRNG (mulberry32), so a failing seed replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function randomRun(seed: number): Promise<void> {
  const random = prng(seed);
  const groupCount = 2;
  const cluster = createCluster({ groupCount });
  for (const server of cluster.servers) server.log.autoComplete = false;
  const acknowledged: { groupId: number; key: string }[] = [];
  let down: NodeId | null = null;
  const roundsMax = 400;
  for (let round = 0; round < roundsMax; round++) {
    for (const server of cluster.servers) {
      // Each held sync completes with some probability per round: out of order across servers.
      if (server.log.pending.length > 0 && random() < 0.4) server.log.release();
      server.host.tick();
    }
    if (random() < 0.3) {
      const groupId = Math.floor(random() * groupCount);
      const leader = leaderOf(cluster, groupId);
      const key = `k${seed}-${round}`;
      leader?.host
        .propose({ groupId, data: put(key, key) })
        .then(() => acknowledged.push({ groupId, key }))
        .catch(() => undefined);
    }
    if (down === null && random() < 0.02) {
      down = ids[Math.floor(random() * ids.length)] ?? null;
      if (down !== null) cluster.net.setDown(down, true);
    } else if (down !== null && random() < 0.05) {
      cluster.net.setDown(down, false);
      down = null;
    }
    await flush(3);
  }
  if (down !== null) cluster.net.setDown(down, false);
  for (const server of cluster.servers) server.log.autoComplete = true;
  for (const server of cluster.servers) server.log.release();
  // Heal, then let every group commit a final write so every server applies all before it.
  await tickUntil(cluster, () => [0, 1].every((groupId) => leaderOf(cluster, groupId) !== undefined), 200);
  for (let groupId = 0; groupId < groupCount; groupId++) {
    const leader = leaderOf(cluster, groupId);
    if (leader === undefined) throw new Error(`seed ${seed}: no leader in group ${groupId}`);
    await leader.host.propose({ groupId, data: put('final', 'x') });
    await tickUntil(cluster, () => cluster.servers.every((s) => has(s, 'final', groupId)), 100);
  }
  expect(acknowledged.length, `seed ${seed}: some writes were acknowledged`).toBeGreaterThan(10);
  for (const { groupId, key } of acknowledged) {
    for (const server of cluster.servers) expect(has(server, key, groupId), `seed ${seed} ${key}`).toBe(true);
  }
  // Same entries, in the same order, at the same indexes, on every server.
  for (let groupId = 0; groupId < groupCount; groupId++) {
    const logs = cluster.servers.map((s) => {
      const storage = s.log.storage(groupId);
      const first = storage.firstIndex();
      const last = storage.lastIndex();
      return storage.entries({ lo: first, hi: last + 1, bytesMax: Number.MAX_SAFE_INTEGER });
    });
    const [reference, ...others] = logs;
    for (const other of others) {
      for (const entry of other) {
        const same = reference?.find((e) => e.index === entry.index);
        if (same !== undefined)
          expect(same.term, `seed ${seed} group ${groupId} index ${entry.index}`).toBe(entry.term);
      }
    }
  }
}

/**
 * A log whose synced writes reach "disk" (its storages) only when released: a crash drops
 * the writes still waiting, as a power failure drops what was never fdatasynced.
 */
class CrashableLog extends MemoryDurableLog {
  private readonly waiting: { writes: readonly GroupWrite[]; resolve: () => void }[] = [];

  persistAsync(writes: readonly GroupWrite[]): Promise<void> {
    return new Promise((resolve) => this.waiting.push({ writes, resolve }));
  }

  get holding(): boolean {
    return this.waiting.length > 0;
  }

  release(): void {
    for (const { writes, resolve } of this.waiting.splice(0)) {
      this.persist(writes, { sync: true });
      resolve();
    }
  }

  /** Power failure: what waits is lost; its promise never settles (that host is gone). */
  crash(): void {
    this.waiting.splice(0);
  }
}

describe('MultiRaftHost with an asynchronous fdatasync, through crashes', () => {
  it('never loses an acknowledged write when every server loses what it had not synced (seeded)', async () => {
    for (const seed of [11, 12, 13, 14]) await crashRun(seed);
  });
});

async function crashRun(seed: number): Promise<void> {
  const random = prng(seed);
  const groupCount = 2;
  const net = new LoopbackNetwork();
  const logs = ids.map(() => new CrashableLog({ groupCount, voters: ids }));
  const boot = (i: number) =>
    kvHost({ id: ids[i] as string, seed: seed * 10 + i, groupCount, net, log: logs[i] as CrashableLog });
  let servers = ids.map((_, i) => boot(i));
  const cluster = () => ({ net, servers });
  const acknowledged: { groupId: number; key: string }[] = [];
  let crashes = 0;
  for (let round = 0; round < 300; round++) {
    for (const server of servers) {
      if (server.log.holding && random() < 0.4) server.log.release();
      server.host.tick();
    }
    if (random() < 0.4) {
      const groupId = Math.floor(random() * groupCount);
      const leader = leaderOf(cluster(), groupId);
      const key = `k${seed}-${round}`;
      leader?.host
        .propose({ groupId, data: put(key, key) })
        .then(() => acknowledged.push({ groupId, key }))
        .catch(() => undefined);
    }
    if (round % 60 === 59) {
      // Every server loses power at once and restarts from what it had synced.
      for (const server of servers) {
        server.host.stop();
        server.log.crash();
      }
      servers = ids.map((_, i) => boot(i));
      crashes++;
    }
    await flush(3);
  }
  for (const server of servers) server.log.release();
  const release = () => {
    for (const server of servers) server.log.release();
  };
  for (let groupId = 0; groupId < groupCount; groupId++) {
    for (let tick = 0; tick < 300 && leaderOf(cluster(), groupId) === undefined; tick++) {
      for (const server of servers) server.host.tick();
      release();
      await flush(3);
    }
    const leader = leaderOf(cluster(), groupId);
    if (leader === undefined) throw new Error(`seed ${seed}: no leader in group ${groupId}`);
    const final = leader.host.propose({ groupId, data: put('final', 'x') });
    for (let tick = 0; tick < 100 && !servers.every((s) => has(s, 'final', groupId)); tick++) {
      for (const server of servers) server.host.tick();
      release();
      await flush(3);
    }
    await final;
  }
  expect(crashes).toBe(5);
  expect(acknowledged.length, `seed ${seed}: writes were acknowledged`).toBeGreaterThan(10);
  for (const { groupId, key } of acknowledged) {
    for (const server of servers)
      expect(has(server, key, groupId), `seed ${seed}: ${key} on ${server.id}`).toBe(true);
  }
}
