import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { run } from './testing/capture.js';

let dev: DevAgent;
const conclave = (argv: readonly string[]) => run(argv, { httpAddr: dev.httpAddr });

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

describe('conclave operator status', () => {
  it('prints the servers, every group and every member as tables', async () => {
    const result = await conclave(['operator', 'status']);
    expect(result.code).toBe(0);
    const [servers, groups, members] = result.stdout.trimEnd().split('\n\n');
    expect(servers?.split('\n')[2]?.split(/ {2,}/)).toEqual([
      'dev',
      expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      '2',
      '0',
      '2',
    ]);
    const groupLines = groups?.split('\n') ?? [];
    expect(groupLines[1]?.split(/ {2,}/)).toEqual([
      'Group',
      'Leader',
      'Term',
      'Followers',
      'Commit',
      'Last',
      'Log',
      'Snapshot',
    ]);
    expect(groupLines.slice(2).map((line) => line.split(/ {2,}/).slice(0, 2))).toEqual([
      ['0', 'dev'],
      ['1', 'dev'],
    ]);
    expect(
      members
        ?.split('\n')
        .slice(2)
        .map((line) => line.split(/ {2,}/).slice(0, 5)),
    ).toEqual([
      ['dev', '0', 'leader', 'voter', expect.stringMatching(/^\d+$/)],
      ['dev', '1', 'leader', 'voter', expect.stringMatching(/^\d+$/)],
    ]);
  });

  it('prints the same as JSON', async () => {
    const result = await conclave(['operator', 'status', '--json']);
    const body = JSON.parse(result.stdout);
    expect(body.cluster.servers.map((s: { id: string }) => s.id)).toEqual(['dev']);
    expect(body.groups.map((g: { groupId: number; leader: string }) => [g.groupId, g.leader])).toEqual([
      [0, 'dev'],
      [1, 'dev'],
    ]);
    expect(body.members[0]).toMatchObject({ id: 'dev', error: null });
  });
});

describe('conclave operator raft remove-peer and transfer-leader', () => {
  it('refuses to remove a server that is no member (exit 2), and the only voter (exit 1 per group)', async () => {
    const ghost = await conclave(['operator', 'raft', 'remove-peer', 'ghost']);
    expect(ghost.code).toBe(exitCodes.usage);
    expect(ghost.stderr).toMatch(/ghost is not a member of any group/);
    const only = await conclave(['operator', 'raft', 'remove-peer', 'dev']);
    expect(only.code).toBe(exitCodes.failed);
    expect(only.stdout).toMatch(/^0 +failed: .*only voter \(CONF_CHANGE_INVALID\)$/m);
    expect((await dev.client.raftConfiguration({ groupId: 0 })).servers.map((s) => s.id)).toEqual(['dev']);
  });

  it('reports a transfer to the current leader as done, and refuses a non-voter (exit 3)', async () => {
    const self = await conclave(['operator', 'raft', 'transfer-leader', 'dev', '--group', '1']);
    expect(self.code).toBe(0);
    expect(self.stdout).toMatch(/^1 +dev leads it already$/m);
    const json = await conclave(['operator', 'raft', 'transfer-leader', 'dev', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      { groupId: 0, ok: true, from: 'dev', started: false },
      { groupId: 1, ok: true, from: 'dev', started: false },
    ]);
    const ghost = await conclave(['operator', 'raft', 'transfer-leader', 'ghost', '--group', '0']);
    expect(ghost.code).toBe(exitCodes.error);
    expect(ghost.stderr).toMatch(/TRANSFER_TARGET_INVALID/);
  });
});
