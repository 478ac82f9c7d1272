/**
 * In-process end to end: three agents form a cluster over real loopback sockets, then a
 * fourth, started with an empty data dir and only `--join <s1's Raft address>`, joins it:
 * it learns s1's id by an identify dial, every group adds it as a learner, it catches up
 * from nothing, and each group's leader promotes it after learnerStableTicks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { groupOfKey } from '@conclave/protocol';
import { freePorts, getKey, putKey, waitFor } from '@conclave/testkit';
import { type Logger, pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from './agent.js';
import { resolveAgentConfig } from './config.js';

const groups = 4;
const tickMs = 20;
const loopback = '127.0.0.1';
const root = mkdtempSync(join(tmpdir(), 'conclave-join-e2e-'));
const agents = new Map<string, Agent>();
const logs = new Map<string, string[]>();

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const [id, lines] of logs) process.stderr.write(`---- ${id} ----\n${lines.slice(-40).join('')}\n`);
  }
  await Promise.all([...agents.values()].map((a) => a.stop({ transferLeadership: false })));
  agents.clear();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Log lines at info and above, kept per server so a failure can show them. */
function captured(id: string): Logger {
  const lines = logs.get(id) ?? [];
  logs.set(id, lines);
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      if (lines.length > 2000) lines.splice(0, 1000);
      callback();
    },
  });
  return pino({ level: 'info' }, stream);
}

async function start(id: string, settings: Record<string, unknown>): Promise<Agent> {
  const config = resolveAgentConfig([
    {
      nodeId: id,
      dataDir: join(root, id),
      httpAddr: `${loopback}:0`,
      groups,
      tickMs,
      ...settings,
    },
  ]);
  const peers = config.join.flatMap((t) => (t.nodeId === null ? [] : [{ nodeId: t.nodeId, raft: t.raft }]));
  const agent = await startAgent({ config, peers, logger: captured(id) });
  agents.set(id, agent);
  return agent;
}

const url = (agent: Agent) => `http://${agent.httpAddress.host}:${agent.httpAddress.port}`;
const running = () => [...agents.values()];
const status = (agent: Agent, groupId: number) => agent.host.group(groupId).raw.status();
const leaderOf = (groupId: number): Agent | undefined =>
  running().find((a) => status(a, groupId).role === 'leader');

/** One key per group, so every group has data from before the join. */
function keysPerGroup(prefix: string): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < groups; i++) {
    const key = `${prefix}-${i}`;
    if (groupOfKey({ key, groupCount: groups }) === keys.length) keys.push(key);
  }
  return keys;
}

/** Write through whichever server leads the key's group now, retrying while leadership moves. */
async function write(key: string, value: string): Promise<void> {
  const groupId = groupOfKey({ key, groupCount: groups });
  await waitFor(
    async () => {
      const leader = leaderOf(groupId);
      return leader !== undefined && (await putKey(url(leader), key, value)).status === 200;
    },
    { timeoutMs: 10_000, intervalMs: 20, what: `an acknowledged write of ${key}` },
  );
}

describe('a server joining a running cluster by a bare address', () => {
  it('becomes a voter of every group, and serves a quorum read of data written before it joined', {
    timeout: 45_000,
  }, async () => {
    const ports = await freePorts(4);
    const raft = (i: number) => `${loopback}:${ports[i] ?? 0}`;
    const ids = ['s1', 's2', 's3'];
    await Promise.all(
      ids.map((id, i) =>
        start(id, {
          bind: raft(i),
          bootstrapExpect: 3,
          join: ids.flatMap((other, j) => (j === i ? [] : [`${other}@${raft(j)}`])).join(','),
        }),
      ),
    );
    await waitFor(() => [...Array(groups).keys()].every((g) => leaderOf(g) !== undefined), {
      timeoutMs: 15_000,
      intervalMs: 20,
      what: 'a leader for every group',
    });
    const before = keysPerGroup('before');
    for (const key of before) await write(key, `value of ${key}`);

    // No node id, no --bootstrap-expect: only where s1 listens.
    const s4 = await start('s4', { bind: raft(3), join: raft(0) });
    // startAgent returned: every group lists s4 (as a learner at least).
    for (let g = 0; g < groups; g++) {
      const leader = leaderOf(g);
      const { voters, learners } =
        leader === undefined ? { voters: [], learners: [] } : status(leader, g).confState;
      expect([...voters, ...learners]).toContain('s4');
    }
    // Every server knows every other's HTTP address: from handshakes, the join reply and the log.
    for (const agent of running()) {
      for (const other of running()) {
        expect(agent.addressBook.httpAddress(other.nodeId), `${agent.nodeId} -> ${other.nodeId}`).toEqual(
          other.httpAddress,
        );
        expect(agent.addressBook.raftAddress(other.nodeId)).toEqual(other.raftAddress);
      }
    }

    // Writes go on while it catches up and is promoted.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) await write(`during-${written}`, 'x').then(() => written++);
    })();
    try {
      await waitFor(
        () =>
          running().every((a) =>
            [...Array(groups).keys()].every((g) => status(a, g).confState.voters.length === 4),
          ),
        { timeoutMs: 25_000, intervalMs: 50, what: 'four voters in every group, on every server' },
      );
    } finally {
      writing = false;
      await writer;
    }
    expect(written).toBeGreaterThan(0);
    for (let g = 0; g < groups; g++) expect(status(s4, g).confState.learners).toEqual([]);
    const after = keysPerGroup('after');
    for (const key of after) await write(key, `value of ${key}`);

    // s4 serves a quorum read of a key written before it joined, as the leader of its group.
    const key = before[2] ?? 'before-0';
    const groupId = groupOfKey({ key, groupCount: groups });
    await waitFor(
      async () => {
        if (status(s4, groupId).role === 'leader') return true;
        const leader = leaderOf(groupId);
        if (leader !== undefined) {
          await fetch(`${url(leader)}/v1/operator/raft/transfer-leader?group=${groupId}&to=s4`, {
            method: 'POST',
          });
        }
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `s4 to lead group ${groupId}` },
    );
    expect(await getKey(url(s4), key, 'quorum')).toEqual({ status: 200, value: `value of ${key}` });
    for (const k of after)
      expect(await getKey(url(s4), k, 'stale')).toEqual({ status: 200, value: `value of ${k}` });

    // Restarted with the same data dir and flags, it just starts: no join.
    await s4.stop();
    agents.delete('s4');
    const linesBefore = logs.get('s4')?.length ?? 0;
    const again = await start('s4', { bind: raft(3), join: raft(0) });
    expect((logs.get('s4') ?? []).slice(linesBefore).some((l) => l.includes('joining the cluster'))).toBe(
      false,
    );
    await write('after-restart', 'y');
    await waitFor(async () => (await getKey(url(again), 'after-restart', 'stale')).status === 200, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'the restarted s4 to apply a new write',
    });
  });
});
