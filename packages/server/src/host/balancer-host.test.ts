/**
 * Leader balancing and leadership transfers on in-process hosts, with one of three servers
 * down: no transfer may target it (each would hold a group's writes for an election timeout,
 * then fail, and the balancer would start the next one).
 */
import { describe, expect, it } from 'vitest';
import { LoopbackNetwork, MemoryDurableLog } from './testing/in-memory.js';
import { type KvHost, kvHost } from './testing/kv-host.js';
import { encodeKvCommand } from './testing/kv-state-machine.js';

const ids = ['s1', 's2', 's3'];
const groupCount = 8;
const groups = [...Array(groupCount).keys()];
/** The default election timeout: the host's window for "heard from recently". */
const electionTimeoutTicks = 10;

function createCluster(options: { seedBase: number; balanceIntervalTicks: number }) {
  const net = new LoopbackNetwork();
  const servers = ids.map((id, i) =>
    kvHost({
      id,
      seed: options.seedBase + i,
      groupCount,
      net,
      log: new MemoryDurableLog({ groupCount, voters: ids }),
      balanceIntervalTicks: options.balanceIntervalTicks,
    }),
  );
  return { net, servers };
}

type Server = KvHost<MemoryDurableLog>;

/** Let every scheduled turn and in-flight message run: yields to the event loop, no timers. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

const role = (server: Server, groupId: number) => server.host.group(groupId).raw.status().role;
const ledBy = (server: Server) => groups.filter((g) => role(server, g) === 'leader').length;
const leaderOf = (servers: readonly Server[], groupId: number) => {
  const leaders = servers.filter((s) => role(s, groupId) === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
};

/** Tick `servers` (the others are down) until `done`, checking `each` after every tick. */
async function tickUntil(options: {
  servers: readonly Server[];
  done: () => boolean;
  ticksMax: number;
  each?: () => void;
}): Promise<void> {
  for (let tick = 0; tick < options.ticksMax; tick++) {
    if (options.done()) return;
    for (const server of options.servers) server.host.tick();
    await flush();
    options.each?.();
  }
  if (!options.done()) throw new Error(`condition not reached within ${options.ticksMax} ticks`);
}

/** Every group a live server leads, and what its transfers in flight target. */
function transferTargets(servers: readonly Server[]): string[] {
  return servers.flatMap((s) =>
    groups.flatMap((g) => {
      const status = s.host.group(g).raw.status();
      return status.role === 'leader' && status.leadTransferee !== null ? [status.leadTransferee] : [];
    }),
  );
}

/** Tick `servers` `ticks` times, every message delivered after each tick. */
async function tickFor(servers: readonly Server[], ticks: number, each?: () => void): Promise<void> {
  for (let tick = 0; tick < ticks; tick++) {
    for (const server of servers) server.host.tick();
    await flush();
    each?.();
  }
}

/**
 * Three servers, every group led (and, with balancing, leaders spread) and no transfer under
 * way, then s3 down: the survivors.
 */
async function clusterWithOneDown(options: { seedBase: number; balanceIntervalTicks: number }) {
  const cluster = createCluster(options);
  const ready = () =>
    groups.every((g) => leaderOf(cluster.servers, g) !== undefined) &&
    (options.balanceIntervalTicks === 0 ||
      cluster.servers.every((s) => ledBy(s) <= Math.ceil(groupCount / ids.length))) &&
    transferTargets(cluster.servers).length === 0;
  await tickUntil({ servers: cluster.servers, done: ready, ticksMax: 600 });
  const [s1, s2, s3] = cluster.servers;
  if (s1 === undefined || s2 === undefined || s3 === undefined) throw new Error('three servers expected');
  cluster.net.setDown('s3', true);
  s3.host.stop();
  return { survivors: [s1, s2], s3 };
}

describe('leader balancing with one of three servers down', () => {
  for (const seedBase of [1, 11, 21]) {
    it(`never transfers a leadership to the dead server, and spreads the groups over the two live ones (seeds ${seedBase}+)`, async () => {
      const { survivors } = await clusterWithOneDown({ seedBase, balanceIntervalTicks: 5 });
      const targets = new Set<string>();
      const record = () => {
        for (const id of transferTargets(survivors)) targets.add(id);
      };
      // Every group is led by a survivor, 4 and 4: the spreading goes on between the two.
      const spread = () =>
        groups.every((g) => leaderOf(survivors, g) !== undefined) && survivors.every((s) => ledBy(s) === 4);
      await tickUntil({ servers: survivors, done: spread, ticksMax: 1000, each: record });
      // And it stays so for 60 more balancing rounds, never targeting s3.
      await tickFor(survivors, 300, record);
      expect([...targets].filter((id) => id === 's3')).toEqual([]);
      expect(survivors.map(ledBy)).toEqual([4, 4]);
      // Writes go through in every group.
      for (const g of groups) {
        const leader = leaderOf(survivors, g);
        const written = leader?.host.propose({
          groupId: g,
          data: encodeKvCommand({ op: 'put', key: `k${g}`, value: new Uint8Array([g]) }),
        });
        await flush();
        await expect(written).resolves.toMatchObject({ index: expect.any(Number) });
      }
    });
  }
});

describe('operator transfers', () => {
  it('refuses a named transfer to a dead voter with TRANSFER_TARGET_UNAVAILABLE, and starts none', async () => {
    const { survivors } = await clusterWithOneDown({ seedBase: 1, balanceIntervalTicks: 0 });
    const [s1, s2] = survivors;
    if (s1 === undefined || s2 === undefined) throw new Error('two survivors expected');
    await tickUntil({
      servers: survivors,
      done: () => groups.every((g) => leaderOf(survivors, g) !== undefined),
      ticksMax: 200,
    });
    // Past the window even for the group whose leader heard s3 last.
    await tickFor(survivors, electionTimeoutTicks);
    for (const g of groups) {
      const leader = leaderOf(survivors, g);
      if (leader === undefined) throw new Error(`no leader for group ${g}`);
      const refused = leader.host.transferLeader({ groupId: g, to: 's3' });
      expect(refused.ok).toBe(false);
      if (!refused.ok) {
        expect(refused.error).toMatchObject({ code: 'TRANSFER_TARGET_UNAVAILABLE' });
        expect(refused.error.message).toMatch(
          new RegExp(`^s3 has not answered ${leader.id}, the leader of group ${g}, `),
        );
      }
      expect(leader.host.group(g).raw.status().leadTransferee).toBeNull();
      // A live voter is still taken.
      const other = leader === s1 ? s2 : s1;
      expect(leader.host.transferLeader({ groupId: g, to: other.id }).ok).toBe(true);
    }
  });

  it('hands leaderships on shutdown only to a live voter', async () => {
    const { survivors } = await clusterWithOneDown({ seedBase: 11, balanceIntervalTicks: 0 });
    const [s1, s2] = survivors;
    if (s1 === undefined || s2 === undefined) throw new Error('two survivors expected');
    await tickUntil({
      servers: survivors,
      done: () => groups.every((g) => leaderOf(survivors, g) !== undefined) && ledBy(s1) > 0,
      ticksMax: 200,
    });
    await tickFor(survivors, electionTimeoutTicks);
    const led = ledBy(s1);
    expect(s1.host.transferAllLeadership()).toBe(led);
    expect(new Set(transferTargets([s1]))).toEqual(new Set(['s2']));
  });
});
