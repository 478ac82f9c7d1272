import { RaftError, RaftErrorCode } from '@conclave/raft';
import { describe, expect, it, vi } from 'vitest';
import { ConclaveError } from '../errors.js';
import { MultiRaftHost } from './host.js';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';
import { kvHost } from './testing/kv-host.js';
import { encodeKvCommand, KvStateMachine } from './testing/kv-state-machine.js';

const ids = ['s1', 's2', 's3'];

function createCluster(options: {
  groupCount: number;
  balanceIntervalTicks?: number;
  clock?: { tickMs: number; now: () => number };
}) {
  const net = new LoopbackNetwork();
  const servers = ids.map((id, i) =>
    kvHost({
      id,
      seed: i + 1,
      groupCount: options.groupCount,
      net,
      log: new MemoryDurableLog({ groupCount: options.groupCount, voters: ids }),
      balanceIntervalTicks: options.balanceIntervalTicks ?? 0,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    }),
  );
  return { net, servers };
}

type Cluster = ReturnType<typeof createCluster>;

/** Let every scheduled turn and in-flight message run: yields to the event loop, no timers. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function tickUntil(cluster: Cluster, done: () => boolean, ticksMax: number): Promise<number> {
  for (let tick = 0; tick < ticksMax; tick++) {
    if (done()) return tick;
    for (const server of cluster.servers) server.host.tick();
    await flush();
  }
  throw new Error(`condition not reached within ${ticksMax} ticks`);
}

function leaderOf(cluster: Cluster, groupId: number) {
  const leaders = cluster.servers.filter((s) => s.host.group(groupId).raw.status().role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

function allGroupsLed(cluster: Cluster, groupCount: number): boolean {
  for (let g = 0; g < groupCount; g++) if (leaderOf(cluster, g) === undefined) return false;
  return true;
}

const put = (key: string, value: string) =>
  encodeKvCommand({ op: 'put', key, value: new TextEncoder().encode(value) });

describe('MultiRaftHost', () => {
  it('elects exactly one leader in every group', async () => {
    const cluster = createCluster({ groupCount: 8 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 8), 200);
    for (let g = 0; g < 8; g++) expect(leaderOf(cluster, g)).toBeDefined();
  });

  it('applies a proposal on every server and answers the proposer with its index', async () => {
    const cluster = createCluster({ groupCount: 4 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 4), 200);
    const leader = leaderOf(cluster, 2);
    if (leader === undefined) throw new Error('no leader');
    const done = leader.host.propose({ groupId: 2, data: put('k', 'v1') });
    await flush();
    await tickUntil(
      cluster,
      () => cluster.servers.every((s) => s.machines.get(2)?.get('k') !== undefined),
      20,
    );
    const { index } = await done;
    for (const server of cluster.servers) {
      const item = server.machines.get(2)?.get('k');
      expect(new TextDecoder().decode(item?.value)).toBe('v1');
      expect(item?.modifyIndex).toBe(index);
      expect(server.machines.get(1)?.get('k')).toBeUndefined();
    }
  });

  it('makes the writes of many groups durable with one persist per turn (group commit)', async () => {
    const cluster = createCluster({ groupCount: 6 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 6), 200);
    const server = cluster.servers[0];
    if (server === undefined) throw new Error('no server');
    // Move the leadership of groups 0-2 to this server, so one turn carries several groups.
    for (const g of [0, 1, 2]) {
      const leader = leaderOf(cluster, g);
      if (leader !== server) leader?.host.group(g).raw.transferLeader(server.id);
      await tickUntil(cluster, () => leaderOf(cluster, g) === server, 100);
    }
    const before = server.log.persistCalls;
    const proposals = [0, 1, 2].flatMap((g) =>
      [0, 1, 2, 3].map((i) => server.host.propose({ groupId: g, data: put(`k${i}`, 'v') })),
    );
    await flush();
    await Promise.all(proposals);
    // Twelve proposals over three groups: one persist for the batch, one for the commit round.
    expect(server.log.persistCalls - before).toBeLessThanOrEqual(3);
  });

  it('fsyncs entries, terms and votes, but not a turn whose only change is the commit index', async () => {
    const cluster = createCluster({ groupCount: 1 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 1), 200);
    const leader = leaderOf(cluster, 0);
    if (leader === undefined) throw new Error('no leader');
    await flush();
    const persists = leader.log.persistCalls;
    const synced = leader.log.syncedPersistCalls;
    const done = leader.host.propose({ groupId: 0, data: put('k', 'v') });
    await flush();
    await done;
    // One synced write for the entry; one unsynced for the commit that followed the acks.
    expect(leader.log.syncedPersistCalls - synced).toBe(1);
    expect(leader.log.persistCalls - persists).toBe(2);
    const term = leader.host.group(0).raw.status().term;
    const followers = cluster.servers.filter((s) => s !== leader);
    const before = followers.map((s) => s.log.syncedPersistCalls);
    const successor = followers[0];
    if (successor === undefined) throw new Error('no follower');
    leader.host.group(0).raw.transferLeader(successor.id);
    await tickUntil(cluster, () => leaderOf(cluster, 0)?.host.group(0).raw.status().term !== term, 100);
    // A new term and a vote are always made durable.
    followers.forEach((s, i) => {
      expect(s.log.syncedPersistCalls).toBeGreaterThan(before[i] ?? Number.POSITIVE_INFINITY);
    });
  });

  it('spreads leadership so that no server leads more than its fair share', async () => {
    const cluster = createCluster({ groupCount: 9, balanceIntervalTicks: 5 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 9), 200);
    const fair = Math.ceil(9 / 3);
    const balanced = () =>
      allGroupsLed(cluster, 9) &&
      cluster.servers.every(
        (s) =>
          [...Array(9).keys()].filter((g) => s.host.group(g).raw.status().role === 'leader').length <= fair,
      );
    await tickUntil(cluster, balanced, 600);
    expect(balanced()).toBe(true);
  });

  it('serves quorum and lease reads once the write they follow is applied', async () => {
    const cluster = createCluster({ groupCount: 2 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 2), 200);
    const leader = leaderOf(cluster, 0);
    if (leader === undefined) throw new Error('no leader');
    const write = leader.host.propose({ groupId: 0, data: put('x', '1') });
    await flush();
    const { index } = await write;
    for (const mode of ['quorum', 'lease'] as const) {
      let answered: number | null = null;
      void leader.host.read({ groupId: 0, mode }).then((readIndex) => {
        answered = readIndex;
      });
      await flush();
      await tickUntil(cluster, () => answered !== null, 10);
      expect(answered).toBeGreaterThanOrEqual(index);
    }
  });

  it('refuses a proposal on a follower with NOT_LEADER naming the leader', async () => {
    const cluster = createCluster({ groupCount: 1 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 1), 200);
    const leader = leaderOf(cluster, 0);
    const follower = cluster.servers.find((s) => s !== leader);
    if (leader === undefined || follower === undefined) throw new Error('no leader');
    await tickUntil(cluster, () => follower.host.group(0).raw.status().leaderId === leader.id, 20);
    const error = await follower.host.propose({ groupId: 0, data: put('k', 'v') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftError);
    expect(error).toMatchObject({ code: RaftErrorCode.NotLeader, leaderId: leader.id });
  });

  it('keeps every group writable when one server goes down', async () => {
    const cluster = createCluster({ groupCount: 4 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 4), 200);
    const downed = cluster.servers[0];
    if (downed === undefined) throw new Error('no server');
    cluster.net.setDown(downed.id, true);
    const live = cluster.servers.filter((s) => s !== downed);
    const ledByLive = () =>
      [0, 1, 2, 3].every((g) => live.some((s) => s.host.group(g).raw.status().role === 'leader'));
    await tickUntil(cluster, ledByLive, 300);
    for (let g = 0; g < 4; g++) {
      const leader = live.find((s) => s.host.group(g).raw.status().role === 'leader');
      if (leader === undefined) throw new Error(`group ${g} has no live leader`);
      const done = leader.host.propose({ groupId: g, data: put('after', String(g)) });
      await flush();
      await expect(done).resolves.toMatchObject({ result: { ok: true } });
    }
  });

  it('hands leadership to a caught-up voter, not to one that is down', async () => {
    const cluster = createCluster({ groupCount: 1 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 1), 200);
    const leader = leaderOf(cluster, 0);
    if (leader === undefined) throw new Error('no leader');
    const [first, second] = cluster.servers.filter((s) => s !== leader);
    if (first === undefined || second === undefined) throw new Error('no followers');
    // The first voter in the list is down and misses a write: it must not be the target.
    cluster.net.setDown(first.id, true);
    const done = leader.host.propose({ groupId: 0, data: put('k', 'v') });
    await flush();
    await expect(done).resolves.toMatchObject({ result: { ok: true } });
    expect(leader.host.transferAllLeadership()).toBe(1);
    expect(leader.host.group(0).raw.status().leadTransferee).toBe(second.id);
    await tickUntil(cluster, () => second.host.group(0).raw.status().role === 'leader', 50);
  });

  it('fails waiting callers with SHUTTING_DOWN when stopped, and refuses new work', async () => {
    const cluster = createCluster({ groupCount: 1 });
    await tickUntil(cluster, () => allGroupsLed(cluster, 1), 200);
    const leader = leaderOf(cluster, 0);
    if (leader === undefined) throw new Error('no leader');
    cluster.net.setDown(leader.id, true);
    const pending = leader.host.propose({ groupId: 0, data: put('k', 'v') });
    leader.host.stop();
    await expect(pending).rejects.toBeInstanceOf(ConclaveError);
    await expect(pending).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    await expect(leader.host.propose({ groupId: 0, data: put('k', 'v') })).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
    });
  });

  it("flushes a leader's AppendEntries to the wire before blocking on its own persist", async () => {
    const events: string[] = [];
    const net = new LoopbackNetwork();
    const logs = ids.map(() => new MemoryDurableLog({ groupCount: 1, voters: ids }));
    const hosts = ids.map((id, i) => {
      const log = logs[i];
      if (log === undefined) throw new Error('no log');
      const inner = net.transportFor(id);
      const recorded = id === 's1';
      return new MultiRaftHost({
        nodeId: id,
        groupCount: 1,
        log: {
          storage: (g) => log.storage(g),
          persist: (writes) => {
            if (recorded) events.push(`persist ${writes.reduce((n, w) => n + w.entries.length, 0)}`);
            log.persist(writes);
          },
          saveSnapshot: (o) => log.saveSnapshot(o),
        },
        transport: {
          send: (to, envelopes) => {
            if (recorded && envelopes.some((e) => e.message.type === 'app' && e.message.entries.length > 0)) {
              events.push(`send app to ${to}`);
            }
            inner.send(to, envelopes);
          },
          flush: () => {
            if (recorded) events.push('flush');
          },
        },
        stateMachine: () => new KvStateMachine(),
        seed: i + 1,
      });
    });
    hosts.forEach((host, i) => {
      net.register(ids[i] ?? '', (envelopes) => host.receive(envelopes));
    });
    const leader = hosts[0];
    if (leader === undefined) throw new Error('no host');
    leader.group(0).raw.campaign();
    leader.runTurns();
    for (let i = 0; i < 10 && leader.group(0).raw.status().role !== 'leader'; i++) await flush();
    expect(leader.group(0).raw.status().role).toBe('leader');
    await flush();
    events.length = 0;
    const done = leader.propose({ groupId: 0, data: put('k', 'v') });
    await flush();
    await done;
    const persist = events.indexOf('persist 1');
    expect(persist).toBeGreaterThan(0);
    expect(events.slice(0, persist)).toEqual(['send app to s2', 'send app to s3', 'flush']);
  });

  it('refuses a group count outside its limit', () => {
    const net = new LoopbackNetwork();
    expect(
      () =>
        new MultiRaftHost({
          nodeId: 's1',
          groupCount: 0,
          log: new MemoryDurableLog({ groupCount: 0, voters: ids }),
          transport: net.transportFor('s1'),
          stateMachine: () => new KvStateMachine(),
          seed: 1,
        }),
    ).toThrow(/groups must be an integer/);
  });
});

describe('lease reads by a leader that was frozen', () => {
  it('serves lease reads from its lease, with no quorum round, while its ticks keep pace with the clock', async () => {
    const tickMs = 10;
    let nowMs = 0;
    const cluster = createCluster({ groupCount: 1, clock: { tickMs, now: () => nowMs } });
    const tick = async () => {
      nowMs += tickMs;
      for (const server of cluster.servers) server.host.tick();
      await flush();
    };
    for (let i = 0; i < 300 && leaderOf(cluster, 0) === undefined; i++) await tick();
    const leader = leaderOf(cluster, 0);
    if (leader === undefined) throw new Error('no leader');
    const write = leader.host.propose({ groupId: 0, data: put('x', '1') });
    await flush();
    const { index } = await write;
    for (let i = 0; i < 3; i++) await tick();
    // Between ticks, a little later than the last one: still within the slack.
    nowMs += tickMs / 2;
    const sends = cluster.net.sends;
    const read = leader.host.read({ groupId: 0, mode: 'lease' });
    await flush();
    expect(await read).toBeGreaterThanOrEqual(index);
    expect(cluster.net.sends).toBe(sends);
  });

  // A process frozen (SIGSTOP, a paused VM, a long GC) counts no ticks meanwhile: when it
  // wakes, its lease, counted in ticks, looks as fresh as when it froze, though the others
  // may have elected a new leader and committed writes since.
  for (const ticksFirst of [0, 1]) {
    it(`serves no stale lease read when it wakes (${ticksFirst === 0 ? 'the read before its next tick' : 'one tick first'})`, async () => {
      const tickMs = 10;
      let nowMs = 0;
      const cluster = createCluster({ groupCount: 1, clock: { tickMs, now: () => nowMs } });
      /** One tick of the servers given, the clock going on as their tickers would. */
      const tick = async (servers: Cluster['servers']) => {
        nowMs += tickMs;
        for (const server of servers) server.host.tick();
        await flush();
      };
      const tickUntilLed = async (servers: Cluster['servers']) => {
        for (
          let i = 0;
          i < 300 && !servers.some((s) => s.host.group(0).raw.status().role === 'leader');
          i++
        ) {
          await tick(servers);
        }
        const leader = servers.find((s) => s.host.group(0).raw.status().role === 'leader');
        if (leader === undefined) throw new Error('no leader');
        return leader;
      };
      const frozen = await tickUntilLed(cluster.servers);
      const first = frozen.host.propose({ groupId: 0, data: put('x', 'before') });
      await flush();
      await first;
      // A few rounds acknowledged: the lease is fresh when it freezes.
      for (let i = 0; i < 3; i++) await tick(cluster.servers);

      // Frozen: it hears nothing and counts nothing while the others elect and write.
      cluster.net.setDown(frozen.id, true);
      const others = cluster.servers.filter((s) => s !== frozen);
      const next = await tickUntilLed(others);
      const second = next.host.propose({ groupId: 0, data: put('x', 'after') });
      await flush();
      const { index: written } = await second;

      // It wakes, and a lease read comes in before anything from the others does.
      cluster.net.setDown(frozen.id, false);
      for (let i = 0; i < ticksFirst; i++) {
        nowMs += tickMs;
        frozen.host.tick();
      }
      let answered: number | Error | null = null;
      frozen.host.read({ groupId: 0, mode: 'lease' }).then(
        (index) => {
          answered = index;
        },
        (error: Error) => {
          answered = error;
        },
      );
      for (let i = 0; i < 50 && answered === null; i++) await tick(cluster.servers);
      // Refused (it learns it no longer leads), or served at or after the new leader's write.
      if (typeof answered === 'number') expect(answered).toBeGreaterThanOrEqual(written);
      else expect(answered).toBeInstanceOf(Error);
    });
  }
});

describe('a failure while stepping a message', () => {
  function oneServer() {
    return new MultiRaftHost<unknown>({
      nodeId: 's1',
      groupCount: 1,
      log: new MemoryDurableLog({ groupCount: 1, voters: ['s1', 's2'] }),
      transport: new LoopbackNetwork().transportFor('s1'),
      stateMachine: () => new KvStateMachine(),
      seed: 1,
    });
  }
  const heartbeat = { type: 'heartbeat', from: 's2', to: 's1', term: 1, commit: 0, context: null } as const;

  it('stops the process (a rethrow outside any caller) when it is not a RaftError, such as a snapshot file that cannot be read', () => {
    const host = oneServer();
    const failure = new Error('ENOENT: the snapshot file is gone');
    host.group(0).raw.step = () => {
      throw failure;
    };
    const deferred: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (fn: () => void) => deferred.push(fn));
    try {
      expect(() => host.receive([{ groupId: 0, message: heartbeat as never }])).toThrow(failure);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(deferred).toHaveLength(1);
    expect(() => deferred[0]?.()).toThrow(failure);
    host.stop();
  });

  it('leaves a RaftError to the caller', () => {
    const host = oneServer();
    host.group(0).raw.step = () => {
      throw new RaftError({ code: RaftErrorCode.NotLeader, message: 'refused' });
    };
    const deferred: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (fn: () => void) => deferred.push(fn));
    try {
      expect(() => host.receive([{ groupId: 0, message: heartbeat as never }])).toThrow(RaftError);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(deferred).toHaveLength(0);
    host.stop();
  });
});
