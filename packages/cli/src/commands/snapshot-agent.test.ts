import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArchiveStream } from '@conclave/server/archive';
import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { snapshotArchiveBytesMax } from './snapshot.js';
import { archiveFileName, listArchives, pruneArchives } from './snapshot-agent-files.js';
import type { AgentEvent } from './snapshot-agent-loop.js';
import { cli } from './testing/capture.js';

/**
 * Agents run in-process with a 200ms interval and --json events; every wait is a bounded
 * poll on those events, and a SIGTERM emitted on the agent's own signal source stops it.
 */
let dev: DevAgent;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'conclave-snapshot-agent-'));
  dev = await startDevAgent({ groups: 2 });
  await waitFor(async () => (await dev.client.agentSelf()).groups.every((g) => g.leaderId === 'dev'), {
    timeoutMs: 10_000,
    intervalMs: 10,
    what: 'every group to elect the server',
  });
  for (let i = 0; i < 5; i++) await dev.client.kvPut({ key: `app/${i}`, value: `v${i}` });
});
afterAll(async () => {
  await dev.stop();
  await rm(root, { recursive: true, force: true });
});

function startAgent(options: { dir: string; retain?: number; lockKey?: string }) {
  const c = cli({ httpAddr: dev.httpAddr, cwd: root });
  const exited = c.run([
    'snapshot',
    'agent',
    '--interval',
    '200ms',
    '--retain',
    String(options.retain ?? 3),
    '--dir',
    options.dir,
    '--json',
    ...(options.lockKey === undefined ? [] : ['--lock-key', options.lockKey]),
  ]);
  // printJson writes each event as one pretty-printed object; they are split at `}\n{`.
  const events = (): AgentEvent[] =>
    c.out.stdout === '' ? [] : (JSON.parse(`[${c.out.stdout.replace(/}\n{/g, '},{')}]`) as AgentEvent[]);
  const saved = () => events().flatMap((e) => (e.event === 'saved' ? [e.file] : []));
  const until = (what: string, done: (events: AgentEvent[]) => boolean) =>
    waitFor(() => done(events()), { timeoutMs: 15_000, intervalMs: 10, what });
  const stop = async () => {
    c.signals.emit('SIGTERM');
    return exited;
  };
  return { ...c, exited, events, saved, until, stop };
}

const lockHolder = async (key: string) => (await dev.client.kvGet(key)).value?.session ?? null;

describe('conclave snapshot agent', () => {
  it('saves an archive every interval, keeps the newest --retain, and releases the lock on SIGTERM', async () => {
    const agent = startAgent({ dir: 'one', retain: 2 });
    await agent.until('four archives', () => agent.saved().length >= 4);
    const session = await lockHolder('conclave/snapshot-agent/.lock');
    expect(session).not.toBeNull();
    expect(await agent.stop()).toBe(exitCodes.ok);
    expect(agent.out.stderr).toBe('');

    const saved = agent.saved();
    const removed = agent.events().flatMap((e) => (e.event === 'removed' ? [e.file] : []));
    expect(removed).toEqual(saved.slice(0, saved.length - 2));
    // Only the newest two remain, each a complete, verified archive; no temp file is left.
    expect(await readdir(join(root, 'one'))).toEqual(saved.slice(-2));
    for (const name of saved.slice(-2)) {
      const meta = await readArchiveStream(createReadStream(join(root, 'one', name)), {
        archiveBytesMax: snapshotArchiveBytesMax,
      });
      expect(meta.groups.reduce((sum, g) => sum + g.keys, 0)).toBeGreaterThanOrEqual(5);
    }
    expect(agent.events().at(-1)).toEqual({ event: 'stopped' });
    // The lock key is gone and the session destroyed.
    expect((await dev.client.kvGet('conclave/snapshot-agent/.lock')).value).toBeNull();
    expect((await dev.client.sessionInfo(session ?? '')).value).toBeNull();
    expect(agent.signals.listenerCount('SIGTERM')).toBe(0);
  });

  it('of two agents only the lock holder saves; stopping it lets the other take over', async () => {
    const key = 'jobs/snapshots/.lock';
    const a = startAgent({ dir: 'a', lockKey: key });
    await a.until('a to save', () => a.saved().length >= 1);
    const b = startAgent({ dir: 'b', lockKey: key });
    await b.until('b to wait', (events) => events.some((e) => e.event === 'waiting'));
    const savedBefore = a.saved().length;
    await a.until('a to save twice more', () => a.saved().length >= savedBefore + 2);
    // b has saved nothing while a held the lock.
    expect(b.saved()).toEqual([]);
    expect(await readdir(join(root, 'b'))).toEqual([]);

    expect(await a.stop()).toBe(exitCodes.ok);
    await b.until('b to take over and save', () => b.saved().length >= 1);
    expect(
      b
        .events()
        .map((e) => e.event)
        .slice(0, 3),
    ).toEqual(['waiting', 'acquired', 'saved']);
    const aFiles = await readdir(join(root, 'a'));
    expect(await b.stop()).toBe(exitCodes.ok);
    // a saved nothing after it stopped.
    expect(await readdir(join(root, 'a'))).toEqual(aFiles);
  });

  it('stops saving when the lock is lost, and waits for it again', async () => {
    const key = 'lost/snapshots/.lock';
    const agent = startAgent({ dir: 'lost', lockKey: key });
    await agent.until('a save', () => agent.saved().length >= 1);
    const first = await lockHolder(key);
    // Deleting the key takes the lock away without a lock delay.
    await dev.client.kvDelete({ key });
    await agent.until('a save under a new session', (events) => {
      const lost = events.findIndex((e) => e.event === 'lost');
      return lost >= 0 && events.slice(lost).some((e) => e.event === 'saved');
    });
    const events = agent.events().map((e) => e.event);
    const lost = events.indexOf('lost');
    // After the loss, nothing was saved before the lock was held again.
    expect(events.slice(lost, lost + 2)).toEqual(['lost', 'acquired']);
    const second = await lockHolder(key);
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
    expect((await dev.client.sessionInfo(first ?? '')).value).toBeNull();
    expect(await agent.stop()).toBe(exitCodes.ok);
  });

  it('refuses bad settings before taking any lock (exit 2)', async () => {
    const cases = [
      [['--interval', '1h', '--retain', '0', '--dir', 'x'], /--retain must be between 1 and/],
      [['--interval', '10ms', '--retain', '2', '--dir', 'x'], /--interval must be a duration between 100ms/],
      [['--interval', 'soon', '--retain', '2', '--dir', 'x'], /--interval must be a duration/],
      [['--retain', '2', '--dir', 'x'], /required option '--interval <duration>'/],
    ] as const;
    for (const [flags, message] of cases) {
      const c = cli({ httpAddr: dev.httpAddr, cwd: root });
      expect(await c.run(['snapshot', 'agent', ...flags]), flags.join(' ')).toBe(exitCodes.usage);
      expect(c.out.stderr).toMatch(message);
    }
    expect((await dev.client.kvGet('conclave/snapshot-agent/.lock')).value).toBeNull();
  });

  it('names archives so that they sort by time, and prunes only its own files', async () => {
    const dir = join(root, 'names');
    const names = [
      archiveFileName({ atMs: Date.UTC(2024, 0, 2, 3, 4, 5, 6), index: 99 }),
      archiveFileName({ atMs: Date.UTC(2024, 0, 2, 3, 4, 5, 7), index: 7 }),
      archiveFileName({ atMs: Date.UTC(2025, 0, 1), index: 1 }),
    ];
    expect(names[0]).toBe('conclave-20240102T030405006Z-99.snap');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    for (const name of [...names].reverse()) await writeFile(join(dir, name), 'x');
    await writeFile(join(dir, 'mine.snap'), 'not the agent’s');
    expect(await listArchives(dir)).toEqual(names);
    expect(await pruneArchives({ dir, retain: 1 })).toEqual(names.slice(0, 2));
    expect((await readdir(dir)).sort()).toEqual([names[2], 'mine.snap'].sort());
  });
});
