import { once } from 'node:events';
import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { cli, run } from './testing/capture.js';
import { Rendezvous } from './testing/rendezvous.js';

let dev: DevAgent;
const rendezvous = new Rendezvous();

beforeAll(async () => {
  dev = await startDevAgent({ groups: 2 });
  await rendezvous.listen();
});
afterAll(async () => {
  await rendezvous.close();
  await dev.stop();
});

const conclave = (argv: readonly string[]) => run(argv, { httpAddr: dev.httpAddr });
const json = async (argv: readonly string[]) => {
  const result = await conclave([...argv, '--json']);
  expect(result.code, result.stderr).toBe(exitCodes.ok);
  return JSON.parse(result.stdout);
};
/** Start a command in-process; it runs until the test ends what it waits on. */
function start(argv: readonly string[]) {
  const c = cli({ httpAddr: dev.httpAddr });
  return { ...c, exited: c.run(argv) };
}
const soon = { timeoutMs: 10_000, intervalMs: 10 };
/** The CONCLAVE_* variables a rendezvous process printed (its first line of output). */
async function envOf(out: { stdout: string }): Promise<Record<string, string>> {
  await waitFor(() => out.stdout.includes('\n'), { ...soon, what: "the command's variables" });
  return JSON.parse(out.stdout.split('\n')[0] ?? '');
}

describe('conclave lock acquire / holder / release', () => {
  it('runs the command with the fence in CONCLAVE_FENCE while holding the lock, then releases it', async () => {
    const first = start(['lock', 'acquire', 'jobs', '--', ...rendezvous.argv('first')]);
    await rendezvous.connected('first');
    const env = await envOf(first.out);
    expect(env).toMatchObject({ CONCLAVE_LOCK: 'jobs' });
    const fence = Number(env.CONCLAVE_FENCE);
    expect(fence).toBeGreaterThan(0);
    const holder = await json(['lock', 'holder', 'jobs']);
    expect(holder).toEqual({ name: 'jobs', session: env.CONCLAVE_SESSION, fence, waiters: [] });
    expect((await conclave(['lock', 'holder', 'jobs'])).stdout).toMatch(new RegExp(`^Fence +${fence}$`, 'm'));

    // Held: another acquire waits, and gives up at its --timeout (exit 1).
    const waiter = await conclave(['lock', 'acquire', 'jobs', '--timeout', '200ms', '--', 'false']);
    expect(waiter.code).toBe(exitCodes.failed);
    expect(waiter.stderr).toContain(
      `Waiting for lock jobs, held by session ${env.CONCLAVE_SESSION} (fence ${fence})`,
    );
    expect(waiter.stderr).toContain('Error! Did not acquire lock jobs within 200ms');

    rendezvous.finish('first');
    // The command's exit code is the lock's.
    expect(await first.exited).toBe(7);
    expect(await json(['lock', 'holder', 'jobs'])).toMatchObject({ session: null, fence: null });
    expect(first.signals.listenerCount('SIGINT')).toBe(0);

    // The next holder gets a larger fence; its arguments reach it as they are (no shell).
    const second = await conclave([
      'lock',
      'acquire',
      'jobs',
      '--',
      process.execPath,
      '-e',
      'console.log(process.env.CONCLAVE_FENCE + " " + process.argv[1]); process.exit(3)',
      'two words',
    ]);
    expect(second.code, second.stderr).toBe(3);
    const [secondFence, argument] = second.stdout.trim().split(' ', 2);
    expect(Number(secondFence)).toBeGreaterThan(fence);
    expect(argument).toBe('two');
    expect(second.stdout.trim()).toBe(`${secondFence} two words`);
    expect(await json(['lock', 'holder', 'jobs'])).toMatchObject({ session: null });
  });

  it('forwards SIGTERM to the command, exits 128 + 15, and releases the lock', async () => {
    const held = start(['lock', 'acquire', 'sig', '--', ...rendezvous.argv('signalled')]);
    const socket = await rendezvous.connected('signalled');
    const closed = once(socket, 'close');
    held.signals.emit('SIGTERM');
    expect(await held.exited).toBe(128 + 15);
    await closed;
    expect(await json(['lock', 'holder', 'sig'])).toMatchObject({ session: null });
  });

  it('stops the command and exits 1 when an operator releases the lock by its fence', async () => {
    const held = start(['lock', 'acquire', 'stuck', '--', ...rendezvous.argv('stuck')]);
    const socket = await rendezvous.connected('stuck');
    const closed = once(socket, 'close');
    const { CONCLAVE_FENCE: fence = '' } = await envOf(held.out);
    const released = await conclave(['lock', 'release', 'stuck', fence]);
    expect(released).toMatchObject({ code: 0, stdout: `Success! Released lock stuck (fence ${fence})\n` });
    expect(await held.exited).toBe(exitCodes.failed);
    expect(held.out.stderr).toContain(
      `Error! Lost lock stuck (lock stuck was released); stopping the command`,
    );
    await closed;
    // The fence holds nothing now: LOCK_NOT_HELD, exit 1.
    const again = await conclave(['lock', 'release', 'stuck', fence]);
    expect(again.code).toBe(exitCodes.failed);
    expect(again.stderr).toMatch(/\(LOCK_NOT_HELD\)\n {2}the fence sent does not hold the lock now/);
  });

  it('refuses a fence that is no number and an acquire without a command (exit 2)', async () => {
    const fence = await conclave(['lock', 'release', 'jobs', 'x']);
    expect(fence.code).toBe(exitCodes.usage);
    expect(fence.stderr).toMatch(/<fence> must be a non-negative integer, got "x" \(USAGE\)/);
    const timeout = await conclave(['lock', 'acquire', 'jobs', '--timeout', '10', '--', 'true']);
    expect(timeout.code).toBe(exitCodes.usage);
    expect(timeout.stderr).toMatch(/--timeout must be a positive duration/);
    expect((await conclave(['lock', 'acquire', 'jobs'])).code).toBe(exitCodes.usage);
  });
});

describe('conclave semaphore', () => {
  it('sets permits, holds them while a command runs (CONCLAVE_PERMITS), and gives them back', async () => {
    expect((await conclave(['semaphore', 'set-permits', 'slots', '2'])).stdout).toBe(
      'Success! Semaphore slots has 2 permits\n',
    );
    expect((await conclave(['semaphore', 'permits', 'slots'])).stdout).toMatch(/^Available +2$/m);
    const held = start([
      'semaphore',
      'acquire',
      'slots',
      '--permits',
      '2',
      '--',
      ...rendezvous.argv('slots'),
    ]);
    await rendezvous.connected('slots');
    expect(await envOf(held.out)).toMatchObject({ CONCLAVE_SEMAPHORE: 'slots', CONCLAVE_PERMITS: '2' });
    expect(await json(['semaphore', 'permits', 'slots'])).toEqual({
      name: 'slots',
      permits: 2,
      available: 0,
      waiters: 0,
    });
    const waiter = await conclave(['semaphore', 'acquire', 'slots', '--timeout', '200ms', '--', 'true']);
    expect(waiter.code).toBe(exitCodes.failed);
    expect(waiter.stderr).toContain('Waiting for 1 permits of semaphore slots: 0 of 2 free, 0 waiting');
    rendezvous.finish('slots');
    expect(await held.exited).toBe(7);
    expect(await json(['semaphore', 'permits', 'slots'])).toMatchObject({ available: 2, waiters: 0 });
  });

  it('refuses more permits than the semaphore has (PERMITS_INVALID, exit 1) and a negative count (exit 2)', async () => {
    await conclave(['semaphore', 'set-permits', 'small', '1']);
    const many = await conclave(['semaphore', 'acquire', 'small', '--permits', '3', '--', 'true']);
    expect(many.code).toBe(exitCodes.failed);
    expect(many.stderr).toMatch(/\(PERMITS_INVALID\)\n {2}ask for 1 to the semaphore/);
    const negative = await conclave(['semaphore', 'set-permits', 'small', '-1']);
    expect(negative.code).toBe(exitCodes.usage);
    expect(negative.stderr).toMatch(/\(USAGE\)/);
  });
});

describe('conclave election', () => {
  it('stands candidates, prints each new term, and runs a command while leading', async () => {
    const watcher = start(['election', 'watch', 'primary', '--count', '2']);
    await waitFor(() => watcher.out.stdout === 'Term 0: no leader\n', { ...soon, what: 'the first term' });

    const c1 = start(['election', 'enter', 'primary', 'c1']);
    await waitFor(() => /Term \d+: c1 leads \(this candidate\)\n$/.test(c1.out.stdout), {
      ...soon,
      what: 'c1 to lead',
    });
    expect(c1.out.stdout).toMatch(/^Entered election primary as candidate c1\n/);
    const term1 = await json(['election', 'term', 'primary']);
    expect(term1).toMatchObject({ name: 'primary', leader: 'c1', candidates: ['c1'] });
    await waitFor(() => watcher.out.stdout.includes('c1 leads'), { ...soon, what: 'the watch to see c1' });

    // A second candidate with a command waits in line, then runs it once it leads.
    const c2 = start(['election', 'enter', 'primary', 'c2', '--', ...rendezvous.argv('c2')]);
    await waitFor(
      () => c2.out.stderr.includes(`Waiting to lead election primary: c1 leads (term ${term1.term})`),
      {
        ...soon,
        what: 'c2 to wait',
      },
    );
    expect((await conclave(['election', 'term', 'primary'])).stdout).toMatch(/^Candidates +c1, c2$/m);
    // The id c1 stands for another session already.
    const taken = await conclave(['election', 'enter', 'primary', 'c1']);
    expect(taken.code).toBe(exitCodes.failed);
    expect(taken.stderr).toMatch(/\(CANDIDATE_EXISTS\)/);

    c1.signals.emit('SIGINT');
    expect(await c1.exited).toBe(0);
    await rendezvous.connected('c2');
    const env = await envOf(c2.out);
    const term2 = await json(['election', 'term', 'primary']);
    expect(term2).toMatchObject({ leader: 'c2', candidates: ['c2'] });
    expect(term2.term).toBeGreaterThan(term1.term);
    expect(env).toMatchObject({
      CONCLAVE_ELECTION: 'primary',
      CONCLAVE_CANDIDATE: 'c2',
      CONCLAVE_TERM: String(term2.term),
      CONCLAVE_FENCE: String(term2.term),
    });
    // The watch saw both new terms, and stopped at its --count.
    expect(await watcher.exited).toBe(0);
    expect(watcher.out.stdout).toBe(
      `Term 0: no leader\nTerm ${term1.term}: c1 leads\nTerm ${term2.term}: c2 leads\n`,
    );

    rendezvous.finish('c2');
    expect(await c2.exited).toBe(7);
    expect(await json(['election', 'term', 'primary'])).toMatchObject({ leader: null, candidates: [] });
  });

  it('stops the command and exits 1 when its candidate is evicted', async () => {
    const leader = start(['election', 'enter', 'ops', 'only', '--', ...rendezvous.argv('evicted')]);
    const socket = await rendezvous.connected('evicted');
    const closed = once(socket, 'close');
    const evicted = await conclave(['election', 'evict', 'ops', 'only']);
    expect(evicted.stdout).toMatch(/^Success! Evicted only from election ops\nTerm \d+: no leader\n$/);
    expect(await leader.exited).toBe(exitCodes.failed);
    expect(leader.out.stderr).toMatch(/Error! Lost the leadership of election ops \(no candidate leads/);
    await closed;
  });

  it('refuses an empty candidate id (BAD_REQUEST, exit 2) and a --count of 0 (USAGE, exit 2)', async () => {
    const empty = await conclave(['election', 'enter', 'primary', '']);
    expect(empty.code).toBe(exitCodes.usage);
    expect(empty.stderr).toMatch(/args\.candidate must not be empty \(BAD_REQUEST\)/);
    const count = await conclave(['election', 'watch', 'primary', '--count', '0']);
    expect(count.code).toBe(exitCodes.usage);
    expect(count.stderr).toMatch(/--count must be at least 1 \(USAGE\)/);
  });
});
