/**
 * The data dir lock with real processes: a second `conclave agent` on a data dir in use
 * refuses to start and names the first one's pid; once the first is killed with SIGKILL
 * (leaving its lock file behind), the data dir starts again and serves what was written.
 * Needs `npm run build` (`npm test` builds first).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertBuilt, freePorts, getKey, putKey, ServerProcess, waitFor } from '@conclave/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dataDirLockFileName } from './data-dir-lock.js';

const loopback = '127.0.0.1';
const poll = { intervalMs: 50, timeoutMs: 15_000 } as const;

let root: string | null = null;
const servers: ServerProcess[] = [];

beforeAll(() => assertBuilt());

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const [i, server] of servers.entries())
      process.stderr.write(`---- agent ${i + 1} (last run) ----\n${server.output.slice(-4000)}\n`);
  }
  await Promise.all(servers.filter((s) => s.running).map((s) => s.kill('SIGKILL')));
  const live = servers.flatMap((s) => s.children).filter((c) => c.exitCode === null && c.signalCode === null);
  servers.length = 0;
  if (root !== null) await rm(root, { recursive: true, force: true });
  root = null;
  expect(live).toEqual([]);
});

/** A one-server agent on `dataDir`, with ports of its own. */
async function devAgent(dataDir: string): Promise<ServerProcess> {
  const [raftPort = 0, httpPort = 0] = await freePorts(2);
  const server = new ServerProcess({
    nodeId: 's1',
    dataDir,
    raftPort,
    httpPort,
    args: [
      'agent',
      '--dev',
      '--node-id',
      's1',
      '--data-dir',
      dataDir,
      '--bind',
      `${loopback}:${raftPort}`,
      '--http-addr',
      `${loopback}:${httpPort}`,
      '--groups',
      '2',
      '--tick-ms',
      '20',
      '--log-level',
      'warn',
    ],
  });
  servers.push(server);
  return server;
}

/** Write until acknowledged: a fresh server elects its leaders just after it is up. */
const writeAcknowledged = (server: ServerProcess, key: string, value: string) =>
  waitFor(async () => (await putKey(server.url, key, value)).status === 200, {
    ...poll,
    what: `an acknowledged write of ${key} on ${server.url}`,
  });

/** A quorum read, retried while the key's group has no leader yet. */
const readWhenLed = (server: ServerProcess, key: string) =>
  waitFor(
    async () => {
      const read = await getKey(server.url, key, 'quorum');
      return read.status === 503 ? undefined : read.status === 200 ? read.value : `HTTP ${read.status}`;
    },
    { ...poll, what: `a quorum read of ${key} on ${server.url}` },
  );

describe('one agent per data dir', () => {
  it('refuses a second agent on a data dir in use, naming the pid; after kill -9 the data dir starts again', {
    timeout: 60_000,
  }, async () => {
    root = await mkdtemp(join(tmpdir(), 'conclave-lock-e2e-'));
    const dataDir = join(root, 's1');
    const first = await devAgent(dataDir);
    await first.start();
    const firstPid = first.children[0]?.pid;
    if (firstPid === undefined) throw new Error('the first agent has no pid');
    await writeAcknowledged(first, 'before', 'v1');

    const second = await devAgent(dataDir);
    const refused = await second.runToExit({ timeoutMs: 15_000 });
    expect(refused.signal).toBeNull();
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).not.toContain(' is up: ');
    expect(refused.stderr).toMatch(
      new RegExp(
        `^conclave agent: data dir ${dataDir} is in use by another conclave agent: pid ${firstPid} `,
      ),
    );
    // Logged at error level too (pino's 50), with the code.
    const logged = refused.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; code?: string; msg: string });
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 50,
        code: 'DATA_DIR_LOCKED',
        msg: expect.stringContaining(`pid ${firstPid}`),
      }),
    );
    // The first agent was left alone and still serves.
    expect(first.running).toBe(true);
    expect(await getKey(first.url, 'before', 'quorum')).toEqual({ status: 200, value: 'v1' });

    expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    // The crash left its lock behind: the restart must see it as stale, not wait on it.
    expect(existsSync(join(dataDir, dataDirLockFileName))).toBe(true);
    await second.start();
    expect(second.output).toContain(`took over a stale data dir lock: pid ${firstPid} is no longer running`);
    // It serves what the first acknowledged, once it leads the key's group again, and takes writes.
    expect(await readWhenLed(second, 'before')).toBe('v1');
    await writeAcknowledged(second, 'after', 'v2');
    expect(await readWhenLed(second, 'after')).toBe('v2');

    // A clean stop releases the lock.
    expect(await second.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dataDir, dataDirLockFileName))).toBe(false);
  });
});
