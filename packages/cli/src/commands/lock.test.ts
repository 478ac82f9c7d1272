import { once } from 'node:events';
import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { cli } from './testing/capture.js';
import { Rendezvous } from './testing/rendezvous.js';

let dev: DevAgent;
const rendezvous = new Rendezvous();

beforeAll(async () => {
  dev = await startDevAgent();
  await rendezvous.listen();
});
afterAll(async () => {
  await rendezvous.close();
  await dev.stop();
});

/** Start `conclave lock [flags] <prefix> [--] <command named name>` in-process. */
function startLock(
  prefix: string,
  name: string,
  options: { flags?: readonly string[]; separator?: boolean } = {},
) {
  const c = cli({ httpAddr: dev.httpAddr });
  const separator = options.separator === true ? ['--'] : [];
  const exited = c.run(['lock', ...(options.flags ?? []), prefix, ...separator, rendezvous.command(name)]);
  return { ...c, exited };
}

const holderOf = async (key: string) => (await dev.client.kvGet(key)).value?.session ?? null;

describe('conclave lock', () => {
  it('runs the command while its session holds <prefix>/.lock, then releases and exits with its code', async () => {
    const lock = startLock('app/svc', 'one');
    await rendezvous.connected('one');
    // The command is running: the key is held by the lock's session.
    const session = await holderOf('app/svc/.lock');
    expect(session).not.toBeNull();
    const info = (await dev.client.sessionInfo(session ?? '')).value;
    expect(info).toMatchObject({ name: 'conclave lock app/svc/.lock', ttlSeconds: 15, behavior: 'release' });
    rendezvous.finish('one');
    expect(await lock.exited).toBe(7);
    // Released and cleaned up: no key left behind, the session destroyed.
    expect((await dev.client.kvGet('app/svc/.lock')).value).toBeNull();
    expect((await dev.client.sessionInfo(session ?? '')).value).toBeNull();
    expect(lock.signals.listenerCount('SIGTERM')).toBe(0);
  });

  it('makes a second holder wait until the first releases', async () => {
    const first = startLock('app/queue', 'first');
    await rendezvous.connected('first');
    const firstSession = await holderOf('app/queue/.lock');
    const second = startLock('app/queue', 'second');
    await waitFor(() => second.out.stderr.includes(`held by session ${firstSession}`), {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'the second holder to wait',
    });
    expect(rendezvous.isRunning('second')).toBe(false);
    expect(await holderOf('app/queue/.lock')).toBe(firstSession);

    rendezvous.finish('first');
    expect(await first.exited).toBe(7);
    await rendezvous.connected('second');
    const secondSession = await holderOf('app/queue/.lock');
    expect(secondSession).not.toBeNull();
    expect(secondSession).not.toBe(firstSession);
    rendezvous.finish('second');
    expect(await second.exited).toBe(7);
    expect((await dev.client.kvGet('app/queue/.lock')).value).toBeNull();
  });

  it('gives up after --timeout-ms while another session holds the lock (exit 1)', async () => {
    // A `--` between the prefix and the command only separates them.
    const holder = startLock('app/busy', 'busy', { separator: true });
    await rendezvous.connected('busy');
    const waiter = startLock('app/busy', 'never', { flags: ['--timeout-ms', '300'] });
    expect(await waiter.exited).toBe(exitCodes.failed);
    expect(waiter.out.stderr).toMatch(/Did not acquire the lock on app\/busy\/\.lock within 300 ms/);
    expect(rendezvous.isRunning('never')).toBe(false);
    rendezvous.finish('busy');
    expect(await holder.exited).toBe(7);
  });

  it('kills the command and exits 1 when the lock is lost', async () => {
    const lock = startLock('app/lost', 'lost');
    const socket = await rendezvous.connected('lost');
    const session = await holderOf('app/lost/.lock');
    const closed = once(socket, 'close');
    await dev.client.sessionDestroy(session ?? '');
    expect(await lock.exited).toBe(exitCodes.failed);
    expect(lock.out.stderr).toMatch(/Lost the lock on app\/lost\/\.lock \(app\/lost\/\.lock was released\)/);
    // The command was killed: its connection closed without the test closing it.
    await closed;
  });

  it('forwards SIGTERM to the command and exits as a shell reports a signal (128 + 15)', async () => {
    const lock = startLock('app/signal', 'signalled');
    const socket = await rendezvous.connected('signalled');
    const closed = once(socket, 'close');
    lock.signals.emit('SIGTERM');
    expect(await lock.exited).toBe(128 + 15);
    await closed;
    expect((await dev.client.kvGet('app/signal/.lock')).value).toBeNull();
  });

  it('refuses a command line without a command (exit 2)', async () => {
    const c = cli({ httpAddr: dev.httpAddr });
    expect(await c.run(['lock', 'app/x'])).toBe(exitCodes.usage);
    expect(c.out.stderr).toMatch(/missing required argument 'command'/);
  });
});
