import { describe, expect, it } from 'vitest';
import { apiApp } from './testing/app.js';
import { expectRefused } from './testing/expect.js';

describe('status and operator routes', () => {
  it('answers the leader as a JSON string, "" when none is known', async () => {
    const { app, service } = await apiApp({ answers: { leaderAddress: () => '127.0.0.1:8300' } });
    const leader = await app.inject({ method: 'GET', url: '/v1/status/leader' });
    expect([leader.statusCode, leader.body]).toEqual([200, '"127.0.0.1:8300"']);
    expect(leader.headers['content-type']).toBe('application/json');
    service.answer('leaderAddress', () => '');
    expect((await app.inject({ method: 'GET', url: '/v1/status/leader' })).body).toBe('""');
  });

  it('answers the peers as a JSON array', async () => {
    const { app } = await apiApp({ answers: { peers: () => ['127.0.0.1:8301', '127.0.0.1:8302'] } });
    const peers = await app.inject({ method: 'GET', url: '/v1/status/peers' });
    expect(peers.body).toBe('["127.0.0.1:8301","127.0.0.1:8302"]');
  });

  it("answers a group's Raft configuration in Consul's shape, group 0 by default", async () => {
    const { app, service } = await apiApp({
      answers: {
        groupCount: () => 8,
        raftConfiguration: ({ groupId }) => ({
          servers: [
            { id: 's1', node: 's1', address: '127.0.0.1:8301', leader: groupId === 3, voter: true },
            { id: 's2', node: 's2', address: '127.0.0.1:8302', leader: false, voter: false },
          ],
          index: 40 + groupId,
        }),
      },
    });
    const group0 = await app.inject({ method: 'GET', url: '/v1/operator/raft/configuration' });
    expect(group0.body).toBe(
      '{"Servers":[' +
        '{"ID":"s1","Node":"s1","Address":"127.0.0.1:8301","Leader":false,"Voter":true,"ProtocolVersion":"3"},' +
        '{"ID":"s2","Node":"s2","Address":"127.0.0.1:8302","Leader":false,"Voter":false,"ProtocolVersion":"3"}' +
        '],"Index":40}',
    );
    const group3 = await app.inject({ method: 'GET', url: '/v1/operator/raft/configuration?group=3' });
    expect(group3.json()).toMatchObject({ Servers: [{ Leader: true }, { Leader: false }], Index: 43 });
    expect(service.callsOf('raftConfiguration')).toEqual([{ groupId: 0 }, { groupId: 3 }]);
  });

  it.each(['x', '-1', '1.5', ''])(
    'refuses ?group=%s when not an unsigned integer, before calling the service',
    async (group) => {
      const target = await apiApp();
      const url = `/v1/operator/raft/configuration?group=${group === '' ? '%20' : group}`;
      await expectRefused(
        target,
        { method: 'GET', url },
        { status: 400, code: 'BAD_REQUEST', message: /group must be an unsigned integer/ },
      );
    },
  );

  it('refuses a group at or above the group count without asking for its configuration', async () => {
    const { app, service } = await apiApp({ answers: { groupCount: () => 8 } });
    const response = await app.inject({ method: 'GET', url: '/v1/operator/raft/configuration?group=8' });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ message: string }>().message).toBe('group must be below the group count 8, got 8');
    expect(service.callsOf('raftConfiguration')).toEqual([]);
  });
});
