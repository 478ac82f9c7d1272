import type { AutopilotConfiguration, AutopilotHealthReply } from '@conclave/client';
import { type DevAgent, fakeServer, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { run } from './testing/capture.js';

let dev: DevAgent;
const conclave = (argv: readonly string[], httpAddr = dev.httpAddr) => run(argv, { httpAddr });

beforeAll(async () => {
  dev = await startDevAgent({ groups: 2 });
  await waitFor(async () => (await dev.client.agentSelf()).groups.every((g) => g.leaderId === 'dev'), {
    timeoutMs: 10_000,
    intervalMs: 10,
    what: 'every group to elect the server',
  });
});
afterAll(async () => {
  await dev.stop();
});

const getConfig = async (): Promise<AutopilotConfiguration> => {
  const result = await conclave(['operator', 'autopilot', 'get-config', '--json']);
  expect(result.code).toBe(exitCodes.ok);
  return JSON.parse(result.stdout) as AutopilotConfiguration;
};

describe('conclave operator autopilot', () => {
  it("get-config shows Consul's defaults, as text and as JSON", async () => {
    const text = await conclave(['operator', 'autopilot', 'get-config']);
    expect(text.code).toBe(exitCodes.ok);
    expect(text.stdout).toMatch(/^CleanupDeadServers\s+true$/m);
    expect(text.stdout).toMatch(/^LastContactThreshold\s+200ms$/m);
    expect(text.stdout).toMatch(/^MaxTrailingLogs\s+250$/m);
    expect(text.stdout).toMatch(/^ServerStabilizationTime\s+10s$/m);
    expect(await getConfig()).toMatchObject({ CleanupDeadServers: true, MinQuorum: 0, MaxTrailingLogs: 250 });
  });

  it('set-config changes only the settings named, through Raft', async () => {
    const result = await conclave([
      'operator',
      'autopilot',
      'set-config',
      '--cleanup-dead-servers',
      'false',
      '--last-contact-threshold',
      '500ms',
      '--max-trailing-logs',
      '1000',
      '--min-quorum',
      '3',
      '--server-stabilization-time',
      '1m30s',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(exitCodes.ok);
    expect(result.stdout).toBe('Configuration updated!\n');
    const config = await getConfig();
    expect(config).toMatchObject({
      CleanupDeadServers: false,
      LastContactThreshold: '500ms',
      MaxTrailingLogs: 1000,
      MinQuorum: 3,
      ServerStabilizationTime: '1m30s',
    });
    expect(config.ModifyIndex).toBeGreaterThan(0);

    const one = await conclave(['operator', 'autopilot', 'set-config', '--min-quorum', '0', '--json']);
    expect(JSON.parse(one.stdout)).toEqual({ written: true });
    expect(await getConfig()).toMatchObject({
      MinQuorum: 0,
      MaxTrailingLogs: 1000,
      CleanupDeadServers: false,
    });
  });

  it('set-config --cas writes only at the current ModifyIndex (exit 1 otherwise)', async () => {
    const { ModifyIndex } = await getConfig();
    const stale = await conclave(['operator', 'autopilot', 'set-config', '--min-quorum', '5', '--cas', '1']);
    expect(stale.code).toBe(exitCodes.failed);
    expect(stale.stdout).toMatch(/could not be atomically updated/);
    expect((await getConfig()).MinQuorum).toBe(0);
    const cas = ['--cas', String(ModifyIndex)];
    const fresh = await conclave(['operator', 'autopilot', 'set-config', '--min-quorum', '5', ...cas]);
    expect(fresh.code).toBe(exitCodes.ok);
    expect((await getConfig()).MinQuorum).toBe(5);
  });

  it('set-config refuses bad values before asking, and the server refuses out-of-range ones (exit 2)', async () => {
    const before = await getConfig();
    const cases = [
      [['--cleanup-dead-servers', 'yes'], /--cleanup-dead-servers must be true or false/],
      [['--last-contact-threshold', '200'], /--last-contact-threshold must be a duration/],
      [['--max-trailing-logs', '-1'], /--max-trailing-logs must be a non-negative integer/],
      [[], /name at least one setting/],
      [['--last-contact-threshold', '5h'], /LastContactThreshold must be between/],
    ] as const;
    for (const [flags, message] of cases) {
      const result = await conclave(['operator', 'autopilot', 'set-config', ...flags]);
      expect(result.code, flags.join(' ')).toBe(exitCodes.usage);
      expect(result.stderr).toMatch(message);
    }
    expect(await getConfig()).toEqual(before);
  });

  it('health reports a healthy server and every group (exit 0), as text and as JSON', async () => {
    const text = await conclave(['operator', 'autopilot', 'health']);
    expect(text.code).toBe(exitCodes.ok);
    expect(text.stdout).toMatch(/^Healthy: true$/m);
    expect(text.stdout).toMatch(/^dev\s+127\.0\.0\.1:\d+\s+leader\s+healthy\s/m);
    expect(text.stdout).toMatch(/^1\s+dev\s+healthy\s+0\s+-$/m);
    const json = await conclave(['operator', 'autopilot', 'health', '--json']);
    const health = JSON.parse(json.stdout) as AutopilotHealthReply;
    expect(health).toMatchObject({ Healthy: true, FailureTolerance: 0 });
    expect(health.Servers.map((s) => s.ID)).toEqual(['dev']);
    expect(health.Groups.map((g) => g.GroupId)).toEqual([0, 1]);
  });

  it('state shows the servers and each group', async () => {
    const text = await conclave(['operator', 'autopilot', 'state']);
    expect(text.code).toBe(exitCodes.ok);
    expect(text.stdout).toMatch(/^Leader: dev$/m);
    expect(text.stdout).toMatch(/^Voters: dev$/m);
    expect(text.stdout).toMatch(/^dev\s+127\.0\.0\.1:\d+\s+leader\s+healthy\s/m);
    const json = JSON.parse((await conclave(['operator', 'autopilot', 'state', '--json'])).stdout) as {
      Servers: Record<string, { Status: string }>;
      Groups: { GroupId: number; Voters: string[] }[];
    };
    expect(json.Servers.dev?.Status).toBe('leader');
    expect(json.Groups).toMatchObject([
      { GroupId: 0, Voters: ['dev'] },
      { GroupId: 1, Voters: ['dev'] },
    ]);
  });

  it('health exits 1 and names the unhealthy groups when the server answers 429', async () => {
    const unhealthy: AutopilotHealthReply = {
      Healthy: false,
      FailureTolerance: 0,
      Servers: [
        {
          ID: 's1',
          Address: '127.0.0.1:8301',
          Leader: true,
          Voter: true,
          Healthy: true,
          LastContact: '0s',
          LastTerm: 2,
          LastIndex: 40,
          StableSince: '2024-01-01T00:00:00.000Z',
          UnhealthyGroups: [],
        },
        {
          ID: 's2',
          Address: '127.0.0.1:8302',
          Leader: false,
          Voter: true,
          Healthy: false,
          // Down: the server could not ask it, so it has no contact, term or index to show.
          LastContact: null,
          LastTerm: null,
          LastIndex: null,
          StableSince: '2024-01-01T00:00:00.000Z',
          UnhealthyGroups: [3],
        },
      ],
      Groups: [
        {
          GroupId: 3,
          Leader: 's1',
          Healthy: false,
          FailureTolerance: 0,
          UnhealthyServers: [{ ID: 's2', Reason: 'no contact' }],
        },
      ],
    };
    const server = await fakeServer((_request, response) => {
      response.writeHead(429, { 'content-type': 'application/json' });
      response.end(JSON.stringify(unhealthy));
    });
    try {
      const text = await conclave(['operator', 'autopilot', 'health'], server.address);
      expect(text.code).toBe(exitCodes.failed);
      expect(text.stdout).toMatch(/^Healthy: false$/m);
      expect(text.stdout).toMatch(/^s2\s+127\.0\.0\.1:8302\s+voter\s+unhealthy\s+-\s+-\s+\S+\s+3$/m);
      expect(text.stdout).toMatch(/^3\s+s1\s+unhealthy\s+0\s+s2 \(no contact\)$/m);
      const json = await conclave(['operator', 'autopilot', 'health', '--json'], server.address);
      expect(json.code).toBe(exitCodes.failed);
      expect(JSON.parse(json.stdout)).toEqual(unhealthy);
      // Answered once each: a 429 from health is an answer, never retried as an overload.
      expect(server.requests()).toBe(2);
    } finally {
      await server.close();
    }
  });
});
