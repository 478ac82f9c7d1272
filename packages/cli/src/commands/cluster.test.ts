import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { run } from './testing/capture.js';

let dev: DevAgent;
let raftAddr: string;
const conclave = (argv: readonly string[]) => run(argv, { httpAddr: dev.httpAddr });

beforeAll(async () => {
  dev = await startDevAgent({ groups: 3 });
  raftAddr = `${dev.agent.raftAddress.host}:${dev.agent.raftAddress.port}`;
  await waitFor(async () => (await dev.client.agentSelf()).groups.every((g) => g.leaderId === 'dev'), {
    timeoutMs: 10_000,
    intervalMs: 10,
    what: 'every group to elect the server',
  });
});
afterAll(async () => {
  await dev.stop();
});

describe('conclave members', () => {
  it("lists group 0's servers with their role, group 0 leadership and groups led", async () => {
    const result = await conclave(['members']);
    expect(result.code).toBe(0);
    const [header, row, ...rest] = result.stdout.trimEnd().split('\n');
    expect(header?.split(/ {2,}/)).toEqual(['Node', 'Address', 'Role', 'Group 0', 'Groups led']);
    expect(row?.split(/ {2,}/)).toEqual(['dev', raftAddr, 'voter', 'leader', '3/3']);
    expect(rest).toEqual([]);
  });

  it('prints the same as JSON', async () => {
    const result = await conclave(['members', '--json']);
    expect(JSON.parse(result.stdout)).toEqual({
      nodeId: 'dev',
      clusterId: 'conclave',
      groups: 3,
      members: [{ id: 'dev', address: raftAddr, role: 'voter', leader: true, groupsLed: 3 }],
    });
  });
});

describe('conclave operator raft list-peers', () => {
  it("lists every group's servers by default", async () => {
    const result = await conclave(['operator', 'raft', 'list-peers']);
    expect(result.code).toBe(0);
    const blocks = result.stdout.trimEnd().split('\n\n');
    expect(blocks).toHaveLength(4);
    blocks.slice(0, 3).forEach((block, groupId) => {
      const [title, header, row] = block.split('\n');
      expect(title).toMatch(
        new RegExp(`^Group ${groupId} \\(configuration index \\d+, commit index \\d+\\)$`),
      );
      expect(header?.split(/ {2,}/)).toEqual([
        'Node',
        'ID',
        'Address',
        'State',
        'Voter',
        'Match',
        'Trailing',
      ]);
      // The leader's own match is its last index, so it trails by nothing.
      expect(row?.split(/ {2,}/)).toEqual([
        'dev',
        'dev',
        raftAddr,
        'leader',
        'true',
        expect.stringMatching(/^\d+$/),
        '0',
      ]);
    });
    expect(blocks[3]?.split('\n')).toEqual([
      'Totals over 3 groups',
      expect.stringMatching(/^ID +Trailing$/),
      'dev  0',
    ]);
  });

  it('lists one group with --group, as JSON with --json', async () => {
    const result = await conclave(['operator', 'raft', 'list-peers', '--group', '2', '--json']);
    const groups = JSON.parse(result.stdout);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({
      groupId: 2,
      servers: [{ id: 'dev', node: 'dev', address: raftAddr, leader: true, voter: true }],
    });
  });

  it('refuses a group the cluster does not have (exit 2)', async () => {
    const result = await conclave(['operator', 'raft', 'list-peers', '--group', '7']);
    expect(result.code).toBe(exitCodes.usage);
    expect(result.stderr).toMatch(/group must be below the group count 3/);
  });
});
