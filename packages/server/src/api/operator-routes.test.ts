import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';

const groupCount = 3;

const setup = singleServerPerTest({ groupCount });

describe('operator HTTP routes on one server', () => {
  it('GET /v1/operator/cluster lists every group with its leader and term, and the servers', async () => {
    const { app, host } = await setup();
    const answer = await app.inject({ method: 'GET', url: '/v1/operator/cluster' });
    expect(answer.statusCode).toBe(200);
    const body = answer.json<{ groups: unknown[]; servers: unknown[]; nodeId: string }>();
    expect(body.nodeId).toBe('dev');
    expect(body.groups).toEqual(
      [0, 1, 2].map((groupId) => ({
        groupId,
        leaderId: 'dev',
        followers: [],
        learners: [],
        term: host.group(groupId).raw.status().term,
      })),
    );
    expect(body.servers).toEqual([
      { id: 'dev', address: '127.0.0.1:8300', voterOf: 3, learnerOf: 0, leaderOf: 3 },
    ]);
  });

  it('GET /v1/operator/groups/<id> reports indexes, log size and the member progress', async () => {
    const { app, host } = await setup();
    for (let i = 0; i < 5; i++) {
      await app.inject({ method: 'PUT', url: `/v1/kv/{t}k${i}`, payload: 'v' });
    }
    const groupId = [0, 1, 2].find((g) => host.group(g).raw.status().lastIndex >= 6) ?? -1;
    const status = host.group(groupId).raw.status();
    const answer = await app.inject({ method: 'GET', url: `/v1/operator/groups/${groupId}` });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({
      groupId,
      answeredBy: 'dev',
      state: 'leader',
      leader: 'dev',
      followers: [],
      term: status.term,
      commitIndex: status.commit,
      appliedIndex: status.applied,
      lastIndex: status.lastIndex,
      logEntries: status.lastIndex - host.group(groupId).logFirstIndex + 1,
      snapshotIndex: 0,
      snapshotTime: null,
      members: [{ id: 'dev', voter: true, leader: true, matchIndex: status.lastIndex, trailingEntries: 0 }],
    });
    const stale = await app.inject({ method: 'GET', url: `/v1/operator/groups/${groupId}?stale` });
    expect(stale.json()).toMatchObject({ groupId, answeredBy: 'dev', lastContactMs: 0 });
  });

  it('refuses a group id out of range or not a number with 400', async () => {
    const { app } = await setup();
    for (const id of ['3', 'x', '-1']) {
      const answer = await app.inject({ method: 'GET', url: `/v1/operator/groups/${id}` });
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'BAD_REQUEST' });
    }
  });

  it("GET /v1/operator/members gives each server's own view of its groups", async () => {
    const { app } = await setup();
    const answer = await app.inject({ method: 'GET', url: '/v1/operator/members' });
    expect(answer.statusCode).toBe(200);
    const [server, ...others] = answer.json<{ servers: { id: string; error: null; groups: unknown[] }[] }>()
      .servers;
    expect(others).toEqual([]);
    expect(server).toMatchObject({ id: 'dev', address: '127.0.0.1:8300', error: null });
    expect(server?.groups.map((g) => (g as { groupId: number; state: string }).state)).toEqual([
      'leader',
      'leader',
      'leader',
    ]);
  });

  it('remove-peer refuses an unknown node, a missing id, and removing the only voter', async () => {
    const { app, host } = await setup();
    const before = [0, 1, 2].map((g) => host.group(g).raw.status().lastIndex);
    const unknown = await app.inject({ method: 'DELETE', url: '/v1/operator/raft/peer?id=ghost' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json<{ message: string }>().message).toMatch(/ghost is not a member of any group/);
    const missing = await app.inject({ method: 'DELETE', url: '/v1/operator/raft/peer' });
    expect(missing.statusCode).toBe(400);
    const last = await app.inject({ method: 'DELETE', url: '/v1/operator/raft/peer?id=dev&group=1' });
    expect(last.statusCode).toBe(400);
    expect(last.json()).toMatchObject({ code: 'CONF_CHANGE_INVALID' });
    // Without a group, each group refuses on its own and the answer lists them all.
    const all = await app.inject({ method: 'DELETE', url: '/v1/operator/raft/peer?id=dev' });
    expect(all.statusCode).toBe(400);
    expect(all.json<{ groups: { ok: boolean; code: string }[] }>().groups).toEqual(
      [0, 1, 2].map((groupId) =>
        expect.objectContaining({ groupId, ok: false, code: 'CONF_CHANGE_INVALID' }),
      ),
    );
    expect([0, 1, 2].map((g) => host.group(g).raw.status().lastIndex)).toEqual(before);
  });

  it('transfer-leader keeps its error codes and treats the current leader as done', async () => {
    const { app } = await setup();
    const badGroup = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=9&to=x',
    });
    expect(badGroup.statusCode).toBe(400);
    expect(badGroup.json()).toMatchObject({ code: 'CONFIG_INVALID' });
    const ghost = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=0&to=ghost',
    });
    expect(ghost.statusCode).toBe(400);
    expect(ghost.json()).toMatchObject({ code: 'TRANSFER_TARGET_INVALID' });
    const ghostAll = await app.inject({ method: 'POST', url: '/v1/operator/raft/transfer-leader?to=ghost' });
    expect(ghostAll.json()).toMatchObject({ code: 'TRANSFER_TARGET_INVALID' });
    const self = await app.inject({ method: 'POST', url: '/v1/operator/raft/transfer-leader?to=dev' });
    expect(self.statusCode).toBe(200);
    expect(self.json()).toEqual({
      to: 'dev',
      groups: [0, 1, 2].map((groupId) => ({ groupId, ok: true, from: 'dev', started: false })),
    });
  });
});
