/**
 * Autopilot on three in-process servers: the settings replicate to every server, a server
 * cut off from Raft turns health to 429, and dead server cleanup removes it once the
 * threshold passes, but never below MinQuorum. Autopilot's clock is the test's (`now`), so
 * the threshold passes when the test says; Raft runs on real ticks.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAutopilotRoutes } from '../api/autopilot-routes.js';
import {
  eventually,
  startTestCluster,
  type TestCluster,
  type TestServer,
} from '../service/testing/cluster.js';
import { captureLog, type LogLine, logLevels } from '../service/testing/log-lines.js';

const groupCount = 2;
const groups = [...Array(groupCount).keys()];
const deadMs = 60_000;

/** Poll an async check until it holds, bounded; health settles a few heartbeats after an election. */
async function until<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('autopilot over 3 servers', () => {
  let cluster: TestCluster;
  let app: FastifyInstance;
  let nowMs = 1_000_000;
  const live = () => cluster.servers.filter((s) => s.id !== 's3');
  /** Each server's log lines, by server id. */
  const logs = new Map<string, LogLine[]>();
  const logged = (event: string) =>
    [...logs.values()].flatMap((lines) => lines.filter((line) => line.event === event));

  beforeAll(async () => {
    cluster = await startTestCluster({
      size: 3,
      groupCount,
      now: () => nowMs,
      logger: (id) => {
        const { logger, lines } = captureLog('info');
        logs.set(id, lines);
        return logger;
      },
    });
    await eventually(() => groups.every((g) => cluster.leaderOf(g) !== undefined), { timeoutMs: 10_000 });
    const s1 = cluster.server('s1').runtime;
    app = Fastify();
    registerAutopilotRoutes(app, { autopilot: s1.autopilot, operator: s1.operator });
  });
  afterAll(async () => {
    await app.close();
    await cluster.close();
  });

  const health = async () => {
    const reply = await app.inject({ method: 'GET', url: '/v1/operator/autopilot/health' });
    return { status: reply.statusCode, body: reply.json() };
  };
  const put = async (body: object) => {
    const reply = await app.inject({
      method: 'PUT',
      url: '/v1/operator/autopilot/configuration',
      payload: body,
    });
    expect(reply.statusCode).toBe(200);
    expect(reply.json()).toBe(true);
  };
  /** Every live server's replica of group 0 holds the settings: each acts on its own copy. */
  const replicated = (minQuorum: number) =>
    eventually(() => live().every((s) => s.runtime.autopilot.settings().minQuorum === minQuorum), {
      timeoutMs: 5_000,
    });
  const isMember = (server: TestServer, groupId: number, id: string) => {
    const conf = server.host.group(groupId).raw.status().confState;
    return conf.voters.includes(id) || conf.learners.includes(id);
  };

  it('reports every server healthy with a failure tolerance of one, and replicates its settings', async () => {
    const { status, body } = await until(async () => {
      const h = await health();
      return h.status === 200 ? h : undefined;
    }, 10_000);
    expect(status).toBe(200);
    expect(body).toMatchObject({ Healthy: true, FailureTolerance: 1 });
    expect(body.Servers.map((s: { ID: string }) => s.ID)).toEqual(['s1', 's2', 's3']);
    expect(body.Servers[0]).toMatchObject({
      Name: 's1',
      Address: '127.0.0.1:8301',
      Voter: true,
      Healthy: true,
    });
    expect(body.Groups).toEqual(
      groups.map((g) => expect.objectContaining({ GroupId: g, Healthy: true, UnhealthyServers: [] })),
    );
    await put({ DeadServerThreshold: `${deadMs / 1000}s`, MinQuorum: 3 });
    await replicated(3);
    const stale = await cluster.server('s3').runtime.autopilot.configuration({ stale: true });
    await eventually(
      () => cluster.server('s3').runtime.autopilot.settings().deadServerThresholdMs === deadMs,
      { timeoutMs: 5_000 },
    );
    expect(stale.modifyIndex).toBeGreaterThan(0);
  });

  it('turns health to 429 while a server is cut off, naming it in every group', async () => {
    cluster.net.setDown('s3', true);
    // Leaders move off s3, and each leader notices it stopped answering.
    await eventually(
      () =>
        groups.every((g) => {
          const leader = cluster.leaderOf(g);
          return (
            leader !== undefined &&
            leader.id !== 's3' &&
            leader.host.group(g).raw.status().progress?.get('s3')?.recentActive === false
          );
        }),
      { timeoutMs: 10_000 },
    );
    // Until the new leaders have heard from s1 and s2, they may count as unhealthy too.
    const { status, body } = await until(async () => {
      const h = await health();
      const settled = h.body.Groups.every(
        (g: { UnhealthyServers: { ID: string }[] }) => g.UnhealthyServers.length === 1,
      );
      return settled ? h : undefined;
    }, 10_000);
    expect(status).toBe(429);
    expect(body).toMatchObject({ Healthy: false, FailureTolerance: 0 });
    expect(body.Servers.find((s: { ID: string }) => s.ID === 's3')).toMatchObject({
      Healthy: false,
      UnhealthyGroups: groups,
    });
    for (const group of body.Groups) {
      expect(group).toMatchObject({ Healthy: false, FailureTolerance: 0 });
      expect(
        group.UnhealthyServers.map((u: { ID: string }) => u.ID),
        JSON.stringify(group),
      ).toEqual(['s3']);
    }
    const state = (await app.inject({ method: 'GET', url: '/v1/operator/autopilot/state' })).json();
    expect(state.Servers.s3).toMatchObject({ Healthy: false, Status: 'voter' });
    expect(state.Groups[0].Servers.s3.Healthy).toBe(false);
  });

  it('keeps a dead voter while MinQuorum forbids its removal, and removes it once allowed', async () => {
    // First observation of the silence by each leader, then past the threshold.
    for (const s of live()) s.runtime.autopilot.check();
    nowMs += deadMs + 1;
    const lastIndexes = groups.map((g) => cluster.leaderOf(g)?.host.group(g).raw.status().lastIndex);
    for (const s of live()) s.runtime.autopilot.check();
    // A removal would have been proposed within check(): nothing was appended.
    expect(groups.map((g) => cluster.leaderOf(g)?.host.group(g).raw.status().lastIndex)).toEqual(lastIndexes);
    expect(groups.every((g) => live().every((s) => isMember(s, g, 's3')))).toBe(true);
    // Each group's leader says once, at warn, which server it keeps and why.
    const kept = logged('dead_server_kept');
    expect(kept.map((line) => line.group).sort()).toEqual(groups);
    for (const line of kept) {
      expect(line).toMatchObject({ level: logLevels.warn, server: 's3' });
      expect(line.term).toBeGreaterThan(0);
      expect(line.reason).toMatch(/below MinQuorum/);
    }

    await put({ MinQuorum: 2 });
    await replicated(2);
    for (const s of live()) s.runtime.autopilot.check();
    await eventually(() => groups.every((g) => live().every((s) => !isMember(s, g, 's3'))), {
      timeoutMs: 10_000,
    });
    for (const g of groups) {
      expect(cluster.leaderOf(g)?.host.group(g).raw.status().confState).toEqual({
        voters: ['s1', 's2'],
        learners: [],
      });
    }
    // The removal is logged at warn by the leader that made it, naming group, server,
    // term and reason, in every group.
    const removals = logged('server_removing');
    expect([...new Set(removals.map((line) => line.group))].sort()).toEqual(groups);
    for (const line of removals) {
      expect(line).toMatchObject({ level: logLevels.warn, server: 's3' });
      expect(line.term).toBeGreaterThan(0);
      expect(line.reason).toMatch(
        /^autopilot dead server cleanup: not heard from for \d+ ms \(threshold \d+ ms\)$/,
      );
    }
  });

  it('is healthy again without the dead server, tolerating no further failure', async () => {
    const { status, body } = await until(async () => {
      const h = await health();
      return h.status === 200 ? h : undefined;
    }, 10_000);
    expect(status).toBe(200);
    expect(body).toMatchObject({ Healthy: true, FailureTolerance: 0 });
    expect(body.Servers.map((s: { ID: string }) => s.ID)).toEqual(['s1', 's2']);
  });
});
