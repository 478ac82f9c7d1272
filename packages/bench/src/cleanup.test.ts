import { describe, expect, it, vi } from 'vitest';
import { Cleanup, type Resource } from './cleanup.js';

function resource(name: string, log: string[], options: { fails?: boolean } = {}): Resource {
  return {
    name,
    release: async () => {
      log.push(`release ${name}`);
      if (options.fails) throw new Error(`${name} would not stop`);
    },
    releaseNow: () => {
      log.push(`now ${name}`);
    },
  };
}

describe('Cleanup', () => {
  it('releases newest first, and every resource even when one fails', async () => {
    const log: string[] = [];
    const cleanup = new Cleanup();
    cleanup.add(resource('cluster', log));
    cleanup.add(resource('client', log, { fails: true }));
    cleanup.add(resource('etcd', log));
    const failures = await cleanup.releaseAll();
    expect(log).toEqual(['release etcd', 'release client', 'release cluster']);
    expect(failures).toEqual(['client: client would not stop']);
    expect(cleanup.size).toBe(0);
    // Released once only: a second pass has nothing left.
    await cleanup.releaseAll();
    expect(log.length).toBe(3);
  });

  it('makes a second releaseAll wait for the pass under way (a signal during the run)', async () => {
    const log: string[] = [];
    const cleanup = new Cleanup();
    let finish: () => void = () => undefined;
    cleanup.add({
      name: 'cluster',
      release: () => new Promise<void>((resolve) => (finish = resolve)),
      releaseNow: () => log.push('now cluster'),
    });
    const first = cleanup.releaseAll();
    const second = cleanup.releaseAll().then(() => log.push('second done'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual([]);
    finish();
    expect(await first).toEqual([]);
    await second;
    expect(log).toEqual(['second done']);
  });

  it('releases one resource on demand and forgets it', async () => {
    const log: string[] = [];
    const cleanup = new Cleanup();
    const cluster = resource('cluster', log);
    cleanup.add(cluster);
    cleanup.add(resource('client', log));
    await cleanup.release(cluster);
    await cleanup.release(cluster);
    expect(log).toEqual(['release cluster']);
    cleanup.releaseAllNow();
    expect(log).toEqual(['release cluster', 'now client']);
  });

  it('removes its process handlers when asked', () => {
    const cleanup = new Cleanup();
    const before = process.listenerCount('SIGINT');
    const remove = cleanup.installProcessHandlers({ log: () => undefined });
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    expect(process.listenerCount('exit')).toBeGreaterThan(0);
    remove();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('on SIGINT releases everything, then exits with 130', async () => {
    const log: string[] = [];
    const cleanup = new Cleanup();
    cleanup.add(resource('cluster', log));
    cleanup.add(resource('client', log));
    const exited = new Promise<number | undefined>((resolve) => {
      vi.spyOn(process, 'exit').mockImplementation((code) => {
        resolve(typeof code === 'number' ? code : undefined);
        return undefined as never;
      });
    });
    const remove = cleanup.installProcessHandlers({ log: (line) => log.push(line) });
    try {
      process.emit('SIGINT');
      expect(await exited).toBe(130);
      expect(log).toEqual([
        'bench: SIGINT, stopping every process and removing temp dirs',
        'release client',
        'release cluster',
      ]);
    } finally {
      remove();
      vi.restoreAllMocks();
    }
  });
});
