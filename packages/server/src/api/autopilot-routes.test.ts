/**
 * The autopilot routes through the agent's HTTP app on one server leading every group:
 * Consul's configuration shape (GET, PUT with validation and ?cas), health and state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type SingleServer,
  singleServerGroupCount,
  startSingleServer,
} from '../agent/testing/single-server.js';

let server: SingleServer;
beforeAll(async () => {
  server = await startSingleServer();
});
afterAll(async () => {
  await server.stop();
});

const url = '/v1/operator/autopilot/configuration';
const get = async (path = url) => server.app.inject({ method: 'GET', url: path });
const put = async (payload: string | object, query = '') =>
  server.app.inject({
    method: 'PUT',
    url: `${url}${query}`,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });

describe('autopilot configuration routes', () => {
  it("answers Consul's defaults before anything is set", async () => {
    const reply = await get();
    expect(reply.statusCode).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.json()).toMatchObject({
      CleanupDeadServers: true,
      LastContactThreshold: '200ms',
      MaxTrailingLogs: 250,
      MinQuorum: 0,
      ServerStabilizationTime: '10s',
      CreateIndex: 0,
      ModifyIndex: 0,
    });
  });

  it('stores a PUT through group 0, keeping fields the body leaves out', async () => {
    const reply = await put({ LastContactThreshold: '500ms', MinQuorum: 3, ServerStabilizationTime: '15s' });
    expect(reply.statusCode).toBe(200);
    expect(reply.json()).toBe(true);
    const body = (await get()).json();
    expect(body).toMatchObject({
      CleanupDeadServers: true,
      LastContactThreshold: '500ms',
      MaxTrailingLogs: 250,
      MinQuorum: 3,
      ServerStabilizationTime: '15s',
    });
    expect(body.ModifyIndex).toBeGreaterThan(0);
    expect(body.CreateIndex).toBe(body.ModifyIndex);
    expect(server.service.autopilot.settings().minQuorum).toBe(3);
    // The learner promoter follows: 15 s at 10 ms ticks.
    expect(server.service.autopilot.promotionPolicy()).toEqual({
      learnerStableTicks: 1500,
      learnerLagEntriesMax: 250,
    });
    expect((await get(`${url}?stale`)).json()).toEqual(body);
  });

  it('applies ?cas only at the last modify index, answering false otherwise', async () => {
    const { ModifyIndex, CreateIndex } = (await get()).json();
    const stale = await put({ MaxTrailingLogs: 10 }, `?cas=${ModifyIndex - 1}`);
    expect(stale.statusCode).toBe(200);
    expect(stale.json()).toBe(false);
    expect((await get()).json().MaxTrailingLogs).toBe(250);
    expect((await put({ MaxTrailingLogs: 10 }, `?cas=${ModifyIndex}`)).json()).toBe(true);
    const after = (await get()).json();
    expect(after).toMatchObject({ MaxTrailingLogs: 10, CreateIndex });
    expect(after.ModifyIndex).toBeGreaterThan(ModifyIndex);
    expect((await put({}, '?cas=x')).statusCode).toBe(400);
  });

  it('refuses a bad body with 400 naming the field, changing nothing', async () => {
    const before = (await get()).json();
    for (const [body, field] of [
      [{ LastContactThreshold: 'fast' }, 'LastContactThreshold'],
      [{ MaxTrailingLogs: 'many' }, 'MaxTrailingLogs'],
      [{ MinQuorum: -1 }, 'MinQuorum'],
      [{ CleanupDeadServers: 1 }, 'CleanupDeadServers'],
      ['{"MinQuorum":', 'parse'],
    ] as const) {
      const reply = await put(body);
      expect(reply.statusCode).toBe(400);
      expect(reply.json()).toMatchObject({ code: 'BAD_REQUEST' });
      expect(reply.json().message).toContain(field);
    }
    expect((await get()).json()).toEqual(before);
  });
});

describe('autopilot health and state routes', () => {
  it('reports the lone server healthy, tolerating no failure, in every group', async () => {
    const reply = await get('/v1/operator/autopilot/health');
    expect(reply.statusCode).toBe(200);
    const body = reply.json();
    expect(body).toMatchObject({ Healthy: true, FailureTolerance: 0 });
    expect(body.Servers).toEqual([
      expect.objectContaining({
        ID: 'dev',
        Name: 'dev',
        Address: '127.0.0.1:8300',
        Leader: true,
        Voter: true,
        Healthy: true,
        LastContact: '0s',
        LastTerm: expect.any(Number),
        LastIndex: expect.any(Number),
      }),
    ]);
    expect(Number.isNaN(Date.parse(body.Servers[0].StableSince))).toBe(false);
    expect(body.Groups).toHaveLength(singleServerGroupCount);
    expect(body.Groups[1]).toEqual({
      GroupId: 1,
      Leader: 'dev',
      Healthy: true,
      Voters: 1,
      FailureTolerance: 0,
      UnhealthyServers: [],
    });
  });

  it('keeps StableSince while the health does not change', async () => {
    const first = (await get('/v1/operator/autopilot/health')).json();
    const second = (await get('/v1/operator/autopilot/health')).json();
    expect(second.Servers[0].StableSince).toBe(first.Servers[0].StableSince);
  });

  it("answers the state in Consul's shape, with each group's own", async () => {
    const reply = await get('/v1/operator/autopilot/state');
    expect(reply.statusCode).toBe(200);
    const body = reply.json();
    expect(body).toMatchObject({ Healthy: true, FailureTolerance: 0, Leader: 'dev', Voters: ['dev'] });
    expect(body.Servers.dev).toMatchObject({
      ID: 'dev',
      Status: 'leader',
      NodeType: 'voter',
      Healthy: true,
      NodeStatus: 'alive',
    });
    expect(body.Groups).toHaveLength(singleServerGroupCount);
    expect(body.Groups[0]).toMatchObject({ GroupId: 0, Leader: 'dev', Voters: ['dev'] });
    expect(body.Groups[0].Servers.dev).toMatchObject({ Status: 'leader', Healthy: true, TrailingLogs: 0 });
  });
});
