import { createHistogram } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MultiRaftHost } from '../host/host.js';
import { KvStateMachine } from '../host/kv-state-machine.js';
import { LoopbackNetwork, MemoryDurableLog } from '../host/testing/in-memory.js';
import { resolveAgentConfig } from './config.js';
import { buildHttpApp, valueBytesMax } from './http.js';

const groupCount = 4;

/** One server leading every group, with the routes built over it (no socket). */
async function singleServer() {
  const machines = new Map<number, KvStateMachine>();
  const host = new MultiRaftHost<unknown>({
    nodeId: 'dev',
    groupCount,
    log: new MemoryDurableLog({ groupCount, voters: ['dev'] }),
    transport: new LoopbackNetwork().transportFor('dev'),
    stateMachine: (groupId) => {
      const machine = new KvStateMachine();
      machines.set(groupId, machine);
      return machine;
    },
    seed: 1,
  });
  for (let g = 0; g < groupCount; g++) host.group(g).raw.campaign();
  host.runTurns();
  const app = buildHttpApp({
    config: resolveAgentConfig([{ dev: true, groups: groupCount }]),
    host,
    machines,
    peers: [],
    raftAddress: { host: '127.0.0.1', port: 8300 },
    logger: pino({ level: 'silent' }),
    lag: createHistogram(),
  });
  return { app, host };
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function setup() {
  const server = await singleServer();
  cleanup = async () => {
    server.host.stop();
    await server.app.close();
  };
  return server;
}

describe('agent HTTP routes', () => {
  it('reports the leader and peers as Consul does (JSON strings of Raft addresses)', async () => {
    const { app } = await setup();
    const leader = await app.inject({ method: 'GET', url: '/v1/status/leader' });
    expect(leader.statusCode).toBe(200);
    expect(leader.json()).toBe('127.0.0.1:8300');
    const peers = await app.inject({ method: 'GET', url: '/v1/status/peers' });
    expect(peers.json()).toEqual(['127.0.0.1:8300']);
  });

  it('stores a value and reads it back in every consistency mode', async () => {
    const { app } = await setup();
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/internal/kv/app/config',
      payload: Buffer.from('v1'),
    });
    expect(put.statusCode).toBe(200);
    const { index } = put.json<{ index: number }>();
    for (const mode of ['quorum', 'lease', 'stale']) {
      const get = await app.inject({ method: 'GET', url: `/v1/internal/kv/app/config?mode=${mode}` });
      expect(get.statusCode).toBe(200);
      expect(get.body).toBe('v1');
      expect(get.headers['x-conclave-index']).toBe(String(index));
    }
    const self = await app.inject({ method: 'GET', url: '/v1/agent/self' });
    expect(self.json<{ groups: { role: string }[] }>().groups.map((g) => g.role)).toEqual(
      Array(groupCount).fill('leader'),
    );
  });

  it('answers 404 for a missing key and 400 for a bad mode, writing nothing', async () => {
    const { app, host } = await setup();
    const before = [...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex);
    expect((await app.inject({ method: 'GET', url: '/v1/internal/kv/nope' })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'GET', url: '/v1/internal/kv/k?mode=eventual' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/mode must be/),
    });
    expect([...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex)).toEqual(before);
  });

  it('refuses a value over the limit with 413 and writes nothing', async () => {
    const { app, host } = await setup();
    const before = [...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex);
    const big = await app.inject({
      method: 'PUT',
      url: '/v1/internal/kv/big',
      payload: Buffer.alloc(valueBytesMax + 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(big.statusCode).toBe(413);
    expect([...Array(groupCount).keys()].map((g) => host.group(g).raw.status().lastIndex)).toEqual(before);
  });

  it('validates transfer-leader input: a bad group is 400, a target that is not a voter is 400', async () => {
    const { app } = await setup();
    const badGroup = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=99&to=x',
    });
    expect(badGroup.statusCode).toBe(400);
    expect(badGroup.json()).toMatchObject({ code: 'CONFIG_INVALID' });
    const badTarget = await app.inject({
      method: 'POST',
      url: '/v1/operator/raft/transfer-leader?group=0&to=ghost',
    });
    expect(badTarget.statusCode).toBe(400);
    expect(badTarget.json()).toMatchObject({ code: 'TRANSFER_TARGET_INVALID' });
  });
});
