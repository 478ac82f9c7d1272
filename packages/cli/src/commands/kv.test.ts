import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevAgent, startDevAgent, waitFor } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { cli, run } from './testing/capture.js';

let dev: DevAgent;
let cwd: string;
/** Run against the test agent. */
const conclave = (argv: readonly string[], options: { stdin?: string } = {}) =>
  run(argv, { httpAddr: dev.httpAddr, cwd, ...options });
const storedText = async (key: string) =>
  Buffer.from((await dev.client.kvGet(key)).value?.value ?? []).toString();

beforeAll(async () => {
  dev = await startDevAgent();
  cwd = await mkdtemp(join(tmpdir(), 'conclave-cli-'));
});
afterAll(async () => {
  await dev.stop();
  await rm(cwd, { recursive: true, force: true });
});

describe('conclave kv put / get / delete', () => {
  it('round-trips a value with human output', async () => {
    const put = await conclave(['kv', 'put', 'rt/greeting', 'hello world']);
    expect(put).toMatchObject({ code: exitCodes.ok, stdout: 'Success! Data written to: rt/greeting\n' });
    expect(await conclave(['kv', 'get', 'rt/greeting'])).toMatchObject({ code: 0, stdout: 'hello world\n' });
    const detailed = await conclave(['kv', 'get', '--detailed', 'rt/greeting']);
    expect(detailed.stdout).toMatch(/^Key +rt\/greeting$/m);
    expect(detailed.stdout).toMatch(/^Session +-$/m);
    expect(detailed.stdout).toMatch(/^Value +hello world$/m);
    const del = await conclave(['kv', 'delete', 'rt/greeting']);
    expect(del).toMatchObject({ code: 0, stdout: 'Success! Deleted key: rt/greeting\n' });
    const missing = await conclave(['kv', 'get', 'rt/greeting']);
    expect(missing).toMatchObject({
      code: exitCodes.failed,
      stdout: '',
      stderr: 'Error! No key exists at: rt/greeting\n',
    });
  });

  it('round-trips a value with --json output, flags included', async () => {
    const put = await conclave(['kv', 'put', '--json', '--flags', '9', 'rtj/k', 'v1']);
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ key: 'rtj/k', written: true });
    const got = await conclave(['kv', 'get', '--json', 'rtj/k']);
    const entry = JSON.parse(got.stdout);
    expect(entry).toMatchObject({
      key: 'rtj/k',
      value: Buffer.from('v1').toString('base64'),
      flags: 9,
      session: null,
    });
    expect(entry.modifyIndex).toBeGreaterThan(0);
    const del = await conclave(['kv', 'delete', '--json', 'rtj/k']);
    expect(JSON.parse(del.stdout)).toEqual({ key: 'rtj/k', deleted: true });
    const missing = await conclave(['kv', 'get', '--json', 'rtj/k']);
    expect(missing.code).toBe(exitCodes.failed);
    expect(JSON.parse(missing.stdout)).toBeNull();
  });

  it('reads the value from stdin with "-" and from a file with "@file"', async () => {
    expect((await conclave(['kv', 'put', 'in/stdin', '-'], { stdin: 'from stdin\n' })).code).toBe(0);
    expect(await storedText('in/stdin')).toBe('from stdin\n');
    await writeFile(join(cwd, 'value.txt'), 'from a file');
    expect((await conclave(['kv', 'put', 'in/file', '@value.txt'])).code).toBe(0);
    expect(await storedText('in/file')).toBe('from a file');
    const absent = await conclave(['kv', 'put', 'in/none', '@no-such-file']);
    expect(absent.code).toBe(exitCodes.usage);
    expect(absent.stderr).toMatch(/cannot read no-such-file/);
  });

  it('exits 1 when a cas write or delete does not apply, and 0 when it does', async () => {
    await conclave(['kv', 'put', 'cas/k', 'v1']);
    const index = (await dev.client.kvGet('cas/k')).value?.modifyIndex ?? 0;
    const stale = await conclave(['kv', 'put', '--cas', String(index + 100), 'cas/k', 'v2']);
    expect(stale.code).toBe(exitCodes.failed);
    expect(stale.stderr).toMatch(/CAS failed/);
    expect(await storedText('cas/k')).toBe('v1');
    const create = await conclave(['kv', 'put', '--cas', '0', 'cas/k', 'v2']);
    expect(create.code).toBe(exitCodes.failed);
    expect((await conclave(['kv', 'put', '--cas', String(index), 'cas/k', 'v2'])).code).toBe(0);
    expect(await storedText('cas/k')).toBe('v2');
    expect((await conclave(['kv', 'delete', '--cas', String(index), 'cas/k'])).code).toBe(exitCodes.failed);
    expect(await storedText('cas/k')).toBe('v2');
  });

  it('acquires and releases with a session, exiting 1 when another session holds the key', async () => {
    const a = await dev.client.sessionCreate({ ttlSeconds: 30 });
    const b = await dev.client.sessionCreate({ ttlSeconds: 30 });
    expect((await conclave(['kv', 'put', '--acquire', a, 'locks/x', 'a'])).stdout).toBe(
      'Success! Lock acquired on: locks/x\n',
    );
    expect((await conclave(['kv', 'put', '--acquire', b, 'locks/x', 'b'])).code).toBe(exitCodes.failed);
    expect((await conclave(['kv', 'put', '--release', b, 'locks/x', 'b'])).code).toBe(exitCodes.failed);
    expect((await conclave(['kv', 'put', '--release', a, 'locks/x', 'a'])).code).toBe(0);
    expect((await dev.client.kvGet('locks/x')).value?.session).toBeNull();
    await dev.client.sessionDestroy(a);
    await dev.client.sessionDestroy(b);
  });

  it('lists entries with --recurse and keys with --keys, rolled up at --separator', async () => {
    await conclave(['kv', 'put', 'tree/a', '1']);
    await conclave(['kv', 'put', 'tree/b/c', '2']);
    await conclave(['kv', 'put', 'tree/b/d', '3']);
    expect((await conclave(['kv', 'get', '--recurse', 'tree/'])).stdout).toBe(
      'tree/a:1\ntree/b/c:2\ntree/b/d:3\n',
    );
    const json = JSON.parse((await conclave(['kv', 'get', '--recurse', '--json', 'tree/b/'])).stdout);
    expect(json.map((e: { key: string }) => e.key)).toEqual(['tree/b/c', 'tree/b/d']);
    expect((await conclave(['kv', 'get', '--keys', 'tree/'])).stdout).toBe('tree/a\ntree/b/\n');
    expect((await conclave(['kv', 'get', '--keys', '--separator', '', 'tree/'])).stdout).toBe(
      'tree/a\ntree/b/c\ntree/b/d\n',
    );
    expect(JSON.parse((await conclave(['kv', 'get', '--keys', '--json', 'tree/b/'])).stdout)).toEqual([
      'tree/b/c',
      'tree/b/d',
    ]);
    const del = await conclave(['kv', 'delete', '--recurse', 'tree/b/']);
    expect(del.stdout).toBe('Success! Deleted keys with prefix: tree/b/\n');
    expect((await conclave(['kv', 'get', '--keys', 'tree/'])).stdout).toBe('tree/a\n');
    expect(await conclave(['kv', 'get', '--recurse', 'none/'])).toMatchObject({ code: 0, stdout: '' });
  });
});

describe('conclave kv export / import', () => {
  it('exports a prefix as Consul does and imports it under a fresh prefix', async () => {
    // Keys in several groups, some sharing a hash tag, one binary value, one with flags.
    await dev.client.kvPut({ key: 'exp/{t}/a', value: 'A' });
    await dev.client.kvPut({ key: 'exp/{t}/b', value: 'B', flags: 5 });
    await dev.client.kvPut({ key: 'exp/bin', value: new Uint8Array([0, 1, 254, 255]) });
    await dev.client.kvPut({ key: 'exp/empty', value: '' });
    for (let i = 0; i < 20; i++) await dev.client.kvPut({ key: `exp/many/${i}`, value: `v${i}` });
    const exported = await conclave(['kv', 'export', 'exp/']);
    expect(exported.code).toBe(0);
    const doc = JSON.parse(exported.stdout) as { key: string; flags: number; value: string }[];
    expect(doc).toHaveLength(24);
    expect(doc.find((e) => e.key === 'exp/{t}/b')).toEqual({ key: 'exp/{t}/b', flags: 5, value: 'Qg==' });
    expect(doc.find((e) => e.key === 'exp/empty')).toEqual({ key: 'exp/empty', flags: 0, value: '' });

    await writeFile(join(cwd, 'export.json'), exported.stdout);
    const imported = await conclave(['kv', 'import', '--json', '--prefix', 'copy/', 'export.json']);
    expect(imported.code).toBe(0);
    const stats = JSON.parse(imported.stdout);
    expect(stats.imported).toBe(24);
    // Batched by group: fewer writes than entries, and every entry written one way or the other.
    expect(stats.transactions).toBeGreaterThan(0);
    expect(stats.transactions + stats.puts).toBeLessThan(24);

    const copied = await dev.client.kvList('copy/exp/');
    const original = await dev.client.kvList('exp/');
    const shape = (e: { key: string; flags: number; value: Uint8Array }, prefix: string) => ({
      key: e.key.slice(prefix.length),
      flags: e.flags,
      value: [...e.value],
    });
    expect(copied.value.map((e) => shape(e, 'copy/'))).toEqual(original.value.map((e) => shape(e, '')));
  });

  it('imports from stdin, printing each key', async () => {
    const doc = JSON.stringify([
      { key: 'stdin-import/x', flags: 0, value: Buffer.from('X').toString('base64') },
    ]);
    const imported = await conclave(['kv', 'import'], { stdin: doc });
    expect(imported).toMatchObject({ code: 0, stdout: 'Imported: stdin-import/x\n' });
    expect(await storedText('stdin-import/x')).toBe('X');
  });

  it('refuses a malformed document before writing anything (exit 2)', async () => {
    const doc = JSON.stringify([
      { key: 'bad-import/ok', flags: 0, value: '' },
      { key: 'bad-import/no', flags: 0, value: 'not base64!' },
    ]);
    const imported = await conclave(['kv', 'import', '-'], { stdin: doc });
    expect(imported.code).toBe(exitCodes.usage);
    expect(imported.stderr).toMatch(/entry 1: value must be base64/);
    expect((await dev.client.kvList('bad-import/')).value).toEqual([]);
  });
});

describe('conclave kv watch', () => {
  it('prints the value, then each change made after it started, until --count changes', async () => {
    await dev.client.kvPut({ key: 'watch/k', value: 'first' });
    const watcher = cli({ httpAddr: dev.httpAddr });
    const done = watcher.run(['kv', 'watch', '--count', '2', 'watch/k']);
    await waitFor(() => watcher.out.stdout === 'first\n', {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'the first value',
    });
    await dev.client.kvPut({ key: 'watch/k', value: 'second' });
    await waitFor(() => watcher.out.stdout === 'first\nsecond\n', {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'a change',
    });
    // A write elsewhere in the key's group wakes the query but is not a change of this key.
    await dev.client.kvPut({ key: 'watch/other', value: 'x' });
    await dev.client.kvPut({ key: 'watch/k', value: 'third' });
    expect(await done).toBe(0);
    expect(watcher.out.stdout).toBe('first\nsecond\nthird\n');
  });

  it('watches a prefix as JSON lines: the entries, then what changed or was deleted', async () => {
    await dev.client.kvPut({ key: 'wp/a', value: '1' });
    const watcher = cli({ httpAddr: dev.httpAddr });
    const done = watcher.run(['kv', 'watch', '--prefix', '--json', '--count', '2', 'wp/']);
    await waitFor(() => watcher.out.stdout.endsWith('\n'), {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'the first line',
    });
    await dev.client.kvPut({ key: 'wp/b', value: '2' });
    await waitFor(() => watcher.out.stdout.split('\n').length === 3, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'a change',
    });
    await dev.client.kvDelete({ key: 'wp/a' });
    expect(await done).toBe(0);
    const lines = watcher.out.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.changed.map((e: { key: string }) => e.key), l.deleted])).toEqual([
      [['wp/a'], []],
      [['wp/b'], []],
      [[], ['wp/a']],
    ]);
  });

  it('ends with exit code 0 on SIGINT', async () => {
    const watcher = cli({ httpAddr: dev.httpAddr });
    const done = watcher.run(['kv', 'watch', 'watch/never']);
    await waitFor(() => watcher.signals.listenerCount('SIGINT') === 1, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: 'the watch to listen for SIGINT',
    });
    watcher.signals.emit('SIGINT');
    expect(await done).toBe(0);
    expect(watcher.signals.listenerCount('SIGINT')).toBe(0);
  });
});

describe('conclave exit codes for bad usage and unreachable servers', () => {
  it('exits 2 on usage errors, from commander or from the command', async () => {
    expect((await conclave(['kv', 'put'])).code).toBe(exitCodes.usage);
    expect((await conclave(['kv', 'get', '--no-such-flag', 'k'])).code).toBe(exitCodes.usage);
    expect((await conclave(['kv', 'frobnicate'])).code).toBe(exitCodes.usage);
    const cas = await conclave(['kv', 'put', '--cas', 'x', 'k', 'v']);
    expect(cas.code).toBe(exitCodes.usage);
    expect(cas.stderr).toMatch(/--cas must be a non-negative integer/);
    const both = await conclave(['kv', 'put', '--cas', '1', '--acquire', 's', 'k', 'v']);
    expect(both.code).toBe(exitCodes.usage);
    // The server refuses the key as a bad request: still the caller's mistake.
    const slash = await conclave(['kv', 'put', '/slash', 'v']);
    expect(slash.code).toBe(exitCodes.usage);
    expect(slash.stderr).toMatch(/BAD_REQUEST/);
    expect((await conclave(['kv', 'get', '--help'])).code).toBe(exitCodes.ok);
  });

  it('exits 3 when the server cannot be reached, naming the address setting', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (address === null || typeof address === 'string') throw new Error('no port');
    const result = await run(['kv', 'get', 'k'], { httpAddr: `127.0.0.1:${address.port}` });
    expect(result.code).toBe(exitCodes.error);
    expect(result.stderr).toMatch(/CONNECTION_FAILED/);
    expect(result.stderr).toMatch(/CONCLAVE_HTTP_ADDR/);
    // --http-addr wins over the environment.
    const flag = await run(['kv', 'get', '--http-addr', dev.httpAddr, 'k'], {
      httpAddr: `127.0.0.1:${address.port}`,
    });
    expect(flag.code).toBe(exitCodes.failed);
  });
});
