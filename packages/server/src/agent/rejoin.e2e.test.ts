/**
 * A server removed while it was down comes back by itself (real processes on loopback).
 * Three servers; autopilot's dead-server threshold is made short; s3 is killed with -9 and
 * autopilot removes it from every group. Restarted with the same command and data, s3 must
 * notice that no leader talks to it, ask to be added back, say so in its log, become a voter
 * of every group again and serve writes, with nobody touching it.
 */
import { ConclaveClient } from '@conclave/client';
import { ProcessCluster, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const groups = 4;
let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.create({ size: 3, groups, tickMs: 50 });
  await cluster.startAll();
  await waitFor(() => cluster.agreedLeaders(), { timeoutMs: 20_000, intervalMs: 50, what: 'leaders' });
}, 60_000);
afterAll(async () => {
  await cluster.destroy();
});

async function votersSeenBy(url: string): Promise<string[][]> {
  const self = (await fetch(`${url}/v1/agent/self`).then((r) => r.json())) as {
    groups: { voters: string[] }[];
  };
  return self.groups.map((g) => [...g.voters].sort());
}

describe('a server removed while down', () => {
  it('asks to be added back when restarted with its data, and becomes a voter of every group again', async () => {
    const [s1, s2, s3] = cluster.servers;
    if (s1 === undefined || s2 === undefined || s3 === undefined) throw new Error('three servers');
    const settings = await fetch(`${s1.url}/v1/operator/autopilot/configuration`, {
      method: 'PUT',
      body: JSON.stringify({ DeadServerThreshold: '2s', ServerStabilizationTime: '1s' }),
    });
    expect(settings.status).toBe(200);
    await s3.kill('SIGKILL');
    await waitFor(
      async () => {
        const views = await Promise.all([s1, s2].map((s) => votersSeenBy(s.url)));
        return views.every((groupsVoters) => groupsVoters.every((v) => v.join() === 's1,s2')) || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'autopilot to remove s3 from every group' },
    );
    // Every survivor says which server was removed, from which groups, when and why.
    for (const survivor of [s1, s2]) {
      const health = (await fetch(`${survivor.url}/v1/operator/autopilot/health`).then((r) => r.json())) as {
        RemovedServers: { ID: string; Groups: number[]; RemovedAt: string; Reason: string }[];
      };
      expect(health.RemovedServers).toEqual([
        {
          ID: 's3',
          Groups: [0, 1, 2, 3],
          RemovedAt: expect.any(String),
          Reason: expect.stringMatching(/^autopilot dead server cleanup: not heard from/),
        },
      ]);
      const cluster = (await fetch(`${survivor.url}/v1/operator/cluster`).then((r) => r.json())) as {
        removedServers: { id: string }[];
      };
      expect(cluster.removedServers.map((r) => r.id)).toEqual(['s3']);
    }
    // Through a client, which retries what a server refused before applying (NOT_LEADER while
    // leadership settles after the removal), as an application would.
    const viaS1 = new ConclaveClient({ address: s1.url });
    for (let i = 0; i < 20; i++)
      expect(await viaS1.kvPut({ key: `while-down-${i}`, value: `v${i}` })).toBe(true);
    await viaS1.close();

    await s3.start({ timeoutMs: 30_000 });
    await waitFor(
      async () => {
        const views = await Promise.all([s1, s2, s3].map((s) => votersSeenBy(s.url)));
        return views.every((groupsVoters) => groupsVoters.every((v) => v.join() === 's1,s2,s3')) || undefined;
      },
      // Removal, a leaderless wait of 100 ticks, catch-up and a stable period before promotion:
      // about 15 s alone, several times that on a loaded 2-core machine.
      { timeoutMs: 120_000, intervalMs: 200, what: 's3 to be a voter of every group again, on every server' },
    ).catch((error: unknown) => {
      process.stderr.write(`---- s3 ----\n${s3.output.slice(-6000)}\n`);
      throw error;
    });
    expect(s3.output).toMatch(/rejoining: groups .* had removed s3 while it was down/);
    const healed = (await fetch(`${s1.url}/v1/operator/autopilot/health`).then((r) => r.json())) as {
      RemovedServers: unknown[];
    };
    expect(healed.RemovedServers).toEqual([]);
    // It serves: writes through it apply, and it reads what was written while it was away.
    const viaS3 = new ConclaveClient({ address: s3.url });
    for (let i = 0; i < 20; i++)
      expect(await viaS3.kvPut({ key: `after-rejoin-${i}`, value: `w${i}` })).toBe(true);
    const back = await viaS3.kvGet('while-down-7', { consistency: 'consistent' });
    expect(Buffer.from(back.value?.value ?? []).toString()).toBe('v7');
    await viaS3.close();
  }, 300_000);
});
