import { Writable } from 'node:stream';
import { ConfChangeType } from '@conclave/raft';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MultiRaftHost } from '../host/host.js';
import { LoopbackNetwork, MemoryDurableLog } from '../host/testing/in-memory.js';
import { encodeKvCommand, KvStateMachine } from '../host/testing/kv-state-machine.js';
import { hostEvents } from './host-events.js';
import { Metrics } from './metrics.js';

/** prom-client's JSON values carry the series name (`*_count`...), which its types omit. */
const seriesName = (value: object): string | undefined =>
  'metricName' in value && typeof value.metricName === 'string' ? value.metricName : undefined;

const ids = ['s1', 's2', 's3'];
/** pino's numeric levels, as they appear in JSON lines. */
const infoLevel = 30;
const warnLevel = 40;

interface LogLine {
  readonly event?: string;
  readonly group?: number;
  readonly term?: number;
  readonly index?: number;
  readonly [field: string]: unknown;
}

/** A pino logger writing JSON lines into an array, so tests read what operators would. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n'))
        if (text !== '') lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

/** Three servers with one group, each with its own metrics and captured log. */
function createCluster() {
  const net = new LoopbackNetwork();
  const servers = ids.map((id, i) => {
    const { lines, logger } = capturingLogger();
    const metrics = new Metrics();
    const host = new MultiRaftHost({
      nodeId: id,
      groupCount: 1,
      log: new MemoryDurableLog({ groupCount: 1, voters: ids }),
      transport: net.transportFor(id),
      stateMachine: () => new KvStateMachine(),
      seed: i + 1,
      balanceIntervalTicks: 0,
      limits: { snapshotThresholdEntries: 4 },
      observer: hostEvents({ metrics, logger }),
    });
    net.register(id, (envelopes) => host.receive(envelopes));
    return { id, host, lines, metrics };
  });
  return servers;
}

type Server = ReturnType<typeof createCluster>[number];

/** Let scheduled turns and loopback messages run: yields to the event loop, no timers. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function tickUntil(servers: readonly Server[], done: () => boolean, ticksMax: number): Promise<void> {
  for (let tick = 0; tick < ticksMax; tick++) {
    if (done()) return;
    for (const server of servers) server.host.tick();
    await flush();
  }
  throw new Error(`condition not reached within ${ticksMax} ticks`);
}

const leaderOf = (servers: readonly Server[]) =>
  servers.find((s) => s.host.group(0).raw.status().role === 'leader');
const eventsOf = (server: Server, event: string) => server.lines.filter((line) => line.event === event);
const knowsLeader = (servers: readonly Server[], id: string) =>
  servers.every((s) => s.host.group(0).raw.status().leaderId === id);

async function electedCluster() {
  const servers = createCluster();
  await tickUntil(
    servers,
    () => {
      const leader = leaderOf(servers);
      return leader !== undefined && knowsLeader(servers, leader.id);
    },
    300,
  );
  const leader = leaderOf(servers);
  if (leader === undefined) throw new Error('no leader');
  return { servers, leader };
}

describe('host event logs', () => {
  it('logs exactly one line per leadership change on every server, naming group, term and leaders', async () => {
    const { servers, leader } = await electedCluster();
    const term = leader.host.group(0).raw.status().term;
    for (const server of servers) {
      const lines = eventsOf(server, 'leader_changed');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: infoLevel,
        group: 0,
        term,
        server: leader.id,
        leader: leader.id,
        previousLeader: null,
        reason: 'first leader known here',
      });
      expect(typeof lines[0]?.index).toBe('number');
    }
    const next = servers.find((s) => s !== leader);
    if (next === undefined) throw new Error('no follower');
    expect(leader.host.group(0).raw.transferLeader(next.id).ok).toBe(true);
    await tickUntil(servers, () => knowsLeader(servers, next.id), 100);
    // A few more ticks of heartbeats must not log the same leader again.
    for (let i = 0; i < 10; i++) {
      for (const server of servers) server.host.tick();
      await flush();
    }
    for (const server of servers) {
      const lines = eventsOf(server, 'leader_changed');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toMatchObject({
        group: 0,
        leader: next.id,
        previousLeader: leader.id,
        reason: `took over from ${leader.id}`,
      });
      expect(lines[1]?.term).toBeGreaterThan(term);
    }
    const changes = await leader.metrics.registry
      .getSingleMetric('conclave_raft_leader_changes_total')
      ?.get();
    expect(changes?.values).toEqual([{ value: 2, labels: { group: '0' } }]);
  });

  it('logs a membership change once where it applies, and a snapshot taken with its size and time', async () => {
    const { servers, leader } = await electedCluster();
    const proposed = leader.host.proposeConfChange({
      groupId: 0,
      change: { type: ConfChangeType.AddLearner, nodeId: 's4' },
    });
    expect(proposed.ok).toBe(true);
    await tickUntil(servers, () => servers.every((s) => eventsOf(s, 'membership_changed').length > 0), 50);
    for (const server of servers) {
      const lines = eventsOf(server, 'membership_changed');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: infoLevel, group: 0, change: 'addLearner', server: 's4' });
      expect(lines[0]?.index).toBeGreaterThan(0);
      expect(lines[0]?.term).toBeGreaterThan(0);
    }
    const writes = [1, 2, 3, 4].map((n) =>
      leader.host.propose({
        groupId: 0,
        data: encodeKvCommand({ op: 'put', key: `k${n}`, value: new Uint8Array(100) }),
      }),
    );
    await tickUntil(servers, () => eventsOf(leader, 'snapshot_taken').length > 0, 50);
    await Promise.all(writes);
    const [taken] = eventsOf(leader, 'snapshot_taken');
    expect(taken).toMatchObject({ group: 0, term: leader.host.group(0).raw.status().term });
    expect(taken?.index).toBeGreaterThanOrEqual(4);
    expect(taken?.bytes).toBeGreaterThan(400);
    expect(typeof taken?.ms).toBe('number');
    const sizes = await leader.metrics.registry.getSingleMetric('conclave_raft_snapshot_bytes')?.get();
    const count = sizes?.values.find((v) => seriesName(v) === 'conclave_raft_snapshot_bytes_count');
    expect(count).toMatchObject({
      value: eventsOf(leader, 'snapshot_taken').length,
      labels: { kind: 'taken' },
    });
    const proposals = await leader.metrics.registry.getSingleMetric('conclave_raft_proposal_seconds')?.get();
    const applied = proposals?.values.find((v) => seriesName(v) === 'conclave_raft_proposal_seconds_count');
    expect(applied).toMatchObject({ value: 4, labels: { group: '0' } });
  });

  it("logs a server's removal at warn on every member, naming group, server, term and reason", async () => {
    const { servers, leader } = await electedCluster();
    const removed = servers.find((s) => s !== leader);
    if (removed === undefined) throw new Error('no follower');
    const term = leader.host.group(0).raw.status().term;
    const proposed = leader.host.proposeConfChange({
      groupId: 0,
      change: { type: ConfChangeType.RemoveNode, nodeId: removed.id },
    });
    expect(proposed.ok).toBe(true);
    const stayed = servers.filter((s) => s !== removed);
    await tickUntil(servers, () => stayed.every((s) => eventsOf(s, 'membership_changed').length > 0), 50);
    for (const server of stayed) {
      const lines = eventsOf(server, 'membership_changed');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: warnLevel,
        group: 0,
        server: removed.id,
        term,
        change: 'removeNode',
        reason: 'removed from the group',
      });
      expect(lines[0]?.msg).toBe(
        `group 0: server ${removed.id} removed from the group (term ${term}, index ${lines[0]?.index})`,
      );
    }
  });
});
