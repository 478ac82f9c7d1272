/**
 * Process-level tests: three real `conclave agent` processes (the built dist) on loopback,
 * killed with SIGKILL, stopped with SIGTERM, restarted with the same arguments, and one
 * with a damaged WAL. Needs `npm run build` (`npm test` builds first).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupOfKey } from '@conclave/protocol';
import {
  agentSelf,
  assertBuilt,
  forEachLimited,
  getKey,
  ProcessCluster,
  RoutingWriter,
  type ServerProcess,
  statusLeader,
  waitFor,
} from '@conclave/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const groups = 4;
const poll = { intervalMs: 50 } as const;

let cluster: ProcessCluster;
const clusters: ProcessCluster[] = [];

beforeAll(() => assertBuilt());

beforeEach(async () => {
  cluster = await ProcessCluster.create({ size: 3, groups, tickMs: 10 });
  clusters.push(cluster);
});

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const server of cluster.servers) {
      process.stderr.write(`---- ${server.nodeId} (last run) ----\n${server.output.slice(-4000)}\n`);
    }
  }
  await cluster.destroy();
  expect(cluster.liveChildren()).toEqual([]);
});

afterAll(async () => {
  // Belt and braces: nothing outlives the file, whatever failed above.
  await Promise.all(clusters.map((c) => c.destroy()));
  expect(clusters.flatMap((c) => c.liveChildren())).toEqual([]);
});

const leadersOf = (what: string, timeoutMs = 15_000) =>
  waitFor(() => cluster.agreedLeaders(), { ...poll, timeoutMs, what });

const convergedCluster = (timeoutMs: number) =>
  waitFor(() => cluster.converged(), {
    ...poll,
    timeoutMs,
    what: 'every group led and every server applied through the leader commit index',
  });

/** Every key reads back its value: quorum from its group's leader, stale from every server. */
async function expectAllReadable(acked: ReadonlyMap<string, string>): Promise<void> {
  let leaders = await convergedCluster(30_000);
  /** A quorum read from the group's leader, following leadership if it moved meanwhile. */
  const readQuorum = (key: string) => {
    const groupId = groupOfKey({ key, groupCount: groups });
    return waitFor(
      async () => {
        const leader = leaders.get(groupId);
        const read = leader === undefined ? undefined : await getKey(cluster.byId(leader).url, key, 'quorum');
        if (read !== undefined && read.status !== 503) return read;
        leaders = (await cluster.agreedLeaders()) ?? leaders;
        return undefined;
      },
      { intervalMs: 20, timeoutMs: 10_000, what: `a quorum read of ${key}` },
    );
  };
  const wrong: string[] = [];
  await forEachLimited([...acked], 8, async ([key, value]) => {
    const quorum = await readQuorum(key);
    if (quorum.status !== 200 || quorum.value !== value) {
      wrong.push(`${key}: quorum ${quorum.status} ${quorum.value.slice(0, 80)}`);
    }
    for (const server of cluster.servers) {
      const stale = await getKey(server.url, key, 'stale');
      if (stale.status !== 200 || stale.value !== value) {
        wrong.push(`${key}: stale on ${server.nodeId} ${stale.status} ${stale.value.slice(0, 80)}`);
      }
    }
  });
  expect(wrong.slice(0, 20), `${wrong.length} of ${acked.size} acknowledged writes misread`).toEqual([]);
}

/** The frames of a WAL segment: offset and payload length of each. */
function walFrames(bytes: Buffer): { offset: number; payloadBytes: number }[] {
  const segmentHeaderBytes = 32;
  const frameHeaderBytes = 24;
  const frameMagic = 0x46574c43; // "CLWF", little-endian
  const frames: { offset: number; payloadBytes: number }[] = [];
  let offset = segmentHeaderBytes;
  while (offset + frameHeaderBytes <= bytes.length && bytes.readUInt32LE(offset) === frameMagic) {
    const payloadBytes = bytes.readUInt32LE(offset + 4);
    if (offset + frameHeaderBytes + payloadBytes > bytes.length) break;
    frames.push({ offset, payloadBytes });
    offset += frameHeaderBytes + payloadBytes;
  }
  return frames;
}

describe('a three-server cluster of real processes', () => {
  it('elects a leader for every group, agreed by every server', { timeout: 30_000 }, async () => {
    await cluster.startAll();
    const leaders = await leadersOf('a leader for every group');
    expect(leaders.size).toBe(groups);
    const view = await cluster.view();
    for (const self of view) {
      expect(self.groups.map((g) => g.voters)).toEqual(Array(groups).fill(['s1', 's2', 's3']));
    }
    // status/leader names group 0's leader by its Raft address on every server. Leaders
    // may still move (balancing), so wait until all servers name the same, current one.
    const agreed = await waitFor(
      async () => {
        const current = (await leadersOf('group 0 leader')).get(0);
        if (current === undefined) return false;
        const expected = `127.0.0.1:${cluster.byId(current).spec.raftPort}`;
        const named = await Promise.all(cluster.servers.map((server) => statusLeader(server.url)));
        return named.every((address) => address === expected) ? expected : false;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'every server to name group 0 leader in status/leader' },
    );
    expect(agreed).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('loses no acknowledged write through repeated kill -9 and restart', { timeout: 90_000 }, async () => {
    await cluster.startAll();
    await leadersOf('a leader for every group');
    const writer = new RoutingWriter(cluster, { prefix: 'crash', retryBudgetMs: 10_000 });
    writer.start(4);
    const progress = async (what: string, count: number) => {
      const from = writer.acked.size;
      await waitFor(() => writer.acked.size >= from + count, { intervalMs: 10, timeoutMs: 15_000, what });
    };
    const rounds = 6;
    let leaderKills = 0;
    try {
      for (let round = 0; round < rounds; round++) {
        await progress(`writes before kill ${round}`, 25);
        let victim: ServerProcess;
        if (round % 2 === 0) {
          // Kill the leader of a random group.
          const leaders = await leadersOf(`leaders before kill ${round}`);
          const groupId = Math.floor(Math.random() * groups);
          victim = cluster.byId(leaders.get(groupId) ?? '');
          leaderKills++;
        } else {
          const index = Math.floor(Math.random() * cluster.servers.length);
          victim = cluster.servers[index] ?? cluster.byId('s1');
        }
        const exit = await victim.kill('SIGKILL');
        expect(exit.signal).toBe('SIGKILL');
        // The other two keep acknowledging writes.
        await progress(`writes with ${victim.nodeId} down (round ${round})`, 25);
        await victim.start();
        // It rejoined: it knows a leader for every group again.
        await waitFor(async () => (await agentSelf(victim.url)).groups.every((g) => g.leaderId !== null), {
          ...poll,
          timeoutMs: 15_000,
          what: `${victim.nodeId} to rejoin`,
        });
      }
      await progress('writes after the last restart', 25);
    } finally {
      await writer.stop();
    }
    expect(leaderKills).toBeGreaterThanOrEqual(3);
    expect(writer.acked.size).toBeGreaterThan(rounds * 50);
    await expectAllReadable(writer.acked);
  });

  it('keeps accepting writes with any one server down, and a restarted server catches up', {
    timeout: 60_000,
  }, async () => {
    await cluster.startAll();
    await leadersOf('a leader for every group');
    const writer = new RoutingWriter(cluster, { prefix: 'down', retryBudgetMs: 10_000 });
    for (const victim of cluster.servers) {
      await victim.kill('SIGKILL');
      const keys = Array.from({ length: 40 }, (_, i) => `down-${victim.nodeId}-${i}`);
      await forEachLimited(keys, 4, (key) => writer.write(key, `written while ${victim.nodeId} was down`));
      await victim.start();
      await convergedCluster(20_000);
      for (const key of keys) {
        const read = await getKey(victim.url, key, 'stale');
        expect(read, key).toEqual({ status: 200, value: `written while ${victim.nodeId} was down` });
      }
    }
    expect(writer.acked.size).toBe(3 * 40);
    await expectAllReadable(writer.acked);
  });

  it('refuses to start from a WAL with a damaged frame', { timeout: 40_000 }, async () => {
    await cluster.startAll();
    await leadersOf('a leader for every group');
    const writer = new RoutingWriter(cluster, { prefix: 'rot', retryBudgetMs: 10_000 });
    const keys = Array.from({ length: 60 }, (_, i) => `rot-${i}`);
    await forEachLimited(keys, 4, (key) => writer.write(key, `value-of-${key}`));
    const victim = cluster.byId('s1');
    expect(await victim.kill('SIGTERM')).toEqual({ code: 0, signal: null });

    const walDir = join(victim.spec.dataDir, 'raft', 'wal');
    const segments = readdirSync(walDir)
      .filter((name) => name.endsWith('.wal'))
      .sort();
    const oldest = segments[0];
    if (oldest === undefined) throw new Error(`no WAL segment in ${walDir}`);
    const path = join(walDir, oldest);
    const bytes = readFileSync(path);
    const frames = walFrames(bytes);
    // In the only (hence last) segment, damage to the last frame is cut as a torn write: hit an earlier one.
    const candidates = segments.length === 1 ? frames.slice(0, -1) : frames;
    const frame = candidates[Math.floor(candidates.length / 2)];
    if (frame === undefined) throw new Error(`too few frames in ${path}: ${frames.length}`);
    const at = frame.offset + 24 + Math.floor(frame.payloadBytes / 2);
    bytes.writeUInt8((bytes.readUInt8(at) ^ 0x40) & 0xff, at);
    writeFileSync(path, bytes);

    const started = Date.now();
    const result = await victim.runToExit({ timeoutMs: 15_000 });
    const elapsedMs = Date.now() - started;
    const output = `${result.stdout}${result.stderr}`;
    expect(result.signal).toBeNull();
    expect(result.code).not.toBe(0);
    expect(elapsedMs).toBeLessThan(10_000);
    expect(output).toContain(oldest);
    expect(output).toMatch(new RegExp(`offset ${frame.offset}\\b`));
    expect(output).not.toContain(' is up: ');
    // One clear line on stderr, no stack trace.
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^conclave agent: refusing to start/);
  });

  it('hands its leaderships to the others and exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
    await cluster.startAll();
    const leaders = await leadersOf('a leader for every group');
    const led = new Map<string, number>();
    for (const id of leaders.values()) led.set(id, (led.get(id) ?? 0) + 1);
    const [victimId] = [...led].sort((a, b) => b[1] - a[1])[0] ?? [];
    const victim = cluster.byId(victimId ?? '');
    expect(led.get(victim.nodeId)).toBeGreaterThan(0);

    expect(await victim.kill('SIGTERM', { timeoutMs: 10_000 })).toEqual({ code: 0, signal: null });

    const after = await leadersOf('the other two servers to lead every group');
    expect([...after.values()].every((id) => id !== victim.nodeId)).toBe(true);
    // And they accept a write in every group.
    const writer = new RoutingWriter(cluster, { prefix: 'after-term', retryBudgetMs: 10_000 });
    const keys: string[] = [];
    for (let i = 0; keys.length < groups * 2; i++) {
      const key = `after-term-${i}`;
      if (groupOfKey({ key, groupCount: groups }) === keys.length % groups) keys.push(key);
    }
    for (const key of keys) await writer.write(key, key);
    expect(writer.acked.size).toBe(keys.length);
  });
});
