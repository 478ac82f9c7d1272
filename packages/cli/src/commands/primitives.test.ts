import { type DevAgent, startDevAgent } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { run } from './testing/capture.js';

let dev: DevAgent;
/** Run against the test agent. */
const conclave = (argv: readonly string[], options: { stdin?: string } = {}) =>
  run(argv, { httpAddr: dev.httpAddr, ...options });
const json = async (argv: readonly string[]) => {
  const result = await conclave([...argv, '--json']);
  expect(result.code, result.stderr).toBe(exitCodes.ok);
  return JSON.parse(result.stdout);
};

beforeAll(async () => {
  dev = await startDevAgent({ groups: 2 });
});
afterAll(async () => {
  await dev.stop();
});

describe('conclave counter', () => {
  it('increments, decrements, sets and compares-and-sets, printing the value after each', async () => {
    expect(await conclave(['counter', 'get', 'hits'])).toMatchObject({ code: 0, stdout: '0\n' });
    expect(await conclave(['counter', 'incr', 'hits'])).toMatchObject({ code: 0, stdout: '1\n' });
    expect((await conclave(['counter', 'incr', 'hits', '--by', '5'])).stdout).toBe('6\n');
    expect((await conclave(['counter', 'decr', 'hits'])).stdout).toBe('5\n');
    // A negative number is an argument, not an option.
    expect((await conclave(['counter', 'set', 'hits', '-3'])).stdout).toBe('-3\n');
    expect(await json(['counter', 'get', 'hits'])).toEqual({ name: 'hits', value: -3 });
    expect(await conclave(['counter', 'cas', 'hits', '-3', '10'])).toMatchObject({ code: 0, stdout: '10\n' });
    const stale = await conclave(['counter', 'cas', 'hits', '-3', '11']);
    expect(stale).toMatchObject({ code: exitCodes.failed, stdout: '' });
    expect(stale.stderr).toMatch(/Did not set counter hits: its value is not -3/);
    expect((await conclave(['counter', 'get', 'hits'])).stdout).toBe('10\n');
  });

  it('refuses a delta that is no integer (USAGE, exit 2) and an overflow (COUNTER_OVERFLOW, exit 1)', async () => {
    const bad = await conclave(['counter', 'incr', 'big', '--by', 'x']);
    expect(bad.code).toBe(exitCodes.usage);
    expect(bad.stderr).toMatch(/--by must be an integer .*\(USAGE\)\n {2}run the command with --help/);
    await conclave(['counter', 'set', 'big', String(Number.MAX_SAFE_INTEGER)]);
    const overflow = await conclave(['counter', 'incr', 'big']);
    expect(overflow.code).toBe(exitCodes.failed);
    expect(overflow.stderr).toMatch(/\(COUNTER_OVERFLOW\)\n {2}keep counters within/);
  });
});

describe('conclave value', () => {
  it('sets, reads (text, --detailed, --json) and deletes a value', async () => {
    const set = await conclave(['value', 'set', 'config', '{"replicas":3}']);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^Success! Value written to: config \(version \d+\)\n$/);
    expect(await conclave(['value', 'get', 'config'])).toMatchObject({ code: 0, stdout: '{"replicas":3}\n' });
    // What the SDK's default (JSON) codec reads.
    const sdk = (await dev.client.primitive({ kind: 'value', name: 'config', op: 'get' })).result as {
      value: string;
      version: number;
    };
    expect(Buffer.from(sdk.value, 'base64').toString()).toBe('{"replicas":3}');
    const detailed = (await conclave(['value', 'get', 'config', '--detailed'])).stdout;
    expect(detailed).toMatch(new RegExp(`^Version +${sdk.version}$`, 'm'));
    expect(detailed).toMatch(/^Value +\{"replicas":3\}$/m);
    expect(await json(['value', 'get', 'config'])).toEqual({
      name: 'config',
      value: Buffer.from('{"replicas":3}').toString('base64'),
      version: sdk.version,
    });
    expect((await conclave(['value', 'delete', 'config'])).stdout).toBe('Success! Deleted value: config\n');
    const missing = await conclave(['value', 'get', 'config']);
    expect(missing).toMatchObject({
      code: exitCodes.failed,
      stdout: '',
      stderr: 'Error! Value config is not set\n',
    });
    const missingJson = await conclave(['value', 'get', 'config', '--json']);
    expect(missingJson.code).toBe(exitCodes.failed);
    expect(JSON.parse(missingJson.stdout)).toBeNull();
  });

  it('writes only at --if-version (VERSION_MISMATCH, exit 1 otherwise), from stdin with "-"', async () => {
    const created = await json(['value', 'set', 'leader', 'a', '--if-version', '0']);
    const again = await conclave(['value', 'set', 'leader', 'b', '--if-version', '0']);
    expect(again.code).toBe(exitCodes.failed);
    expect(again.stderr).toMatch(/\(VERSION_MISMATCH\)\n {2}read the current version/);
    const next = await conclave(['value', 'set', 'leader', '-', '--if-version', String(created.version)], {
      stdin: 'from stdin',
    });
    expect(next.code, next.stderr).toBe(0);
    expect((await conclave(['value', 'get', 'leader'])).stdout).toBe('from stdin\n');
    const stale = await conclave(['value', 'delete', 'leader', '--if-version', String(created.version)]);
    expect(stale.code).toBe(exitCodes.failed);
    expect(stale.stderr).toMatch(
      /Did not delete value leader: it is not at version \d+ \(VERSION_MISMATCH\)/,
    );
    expect((await conclave(['value', 'get', 'leader'])).code).toBe(0);
  });

  it('refuses a --ttl that is no duration (USAGE) or out of range (BAD_REQUEST), exit 2', async () => {
    const unitless = await conclave(['value', 'set', 'tmp', 'x', '--ttl', '30']);
    expect(unitless.code).toBe(exitCodes.usage);
    expect(unitless.stderr).toMatch(/--ttl must be a positive duration .*\(USAGE\)/);
    const short = await conclave(['value', 'set', 'tmp', 'x', '--ttl', '10ms']);
    expect(short.code).toBe(exitCodes.usage);
    expect(short.stderr).toMatch(/ttlMs must be .*\(BAD_REQUEST\)\n {2}fix the named parameter/);
    expect((await conclave(['value', 'set', 'tmp', 'x', '--ttl', '1m30s'])).code).toBe(0);
  });
});

describe('conclave map', () => {
  it('puts, inserts, updates, reads, lists, removes and clears entries', async () => {
    expect((await conclave(['map', 'put', 'users', 'ann', 'admin'])).stdout).toMatch(
      /^Success! Put ann in map users \(version \d+\)\n$/,
    );
    expect((await conclave(['map', 'insert', 'users', 'bob', 'dev'])).code).toBe(0);
    const present = await conclave(['map', 'insert', 'users', 'ann', 'x']);
    expect(present.code).toBe(exitCodes.failed);
    expect(present.stderr).toMatch(/map users has the key ann already \(VERSION_MISMATCH\)\n {2}use put/);
    const absent = await conclave(['map', 'update', 'users', 'cid', 'x']);
    expect(absent.code).toBe(exitCodes.failed);
    expect(absent.stderr).toMatch(/map users has no key cid \(KEY_NOT_FOUND\)/);
    const ann = await json(['map', 'get', 'users', 'ann']);
    expect(ann).toMatchObject({ name: 'users', key: 'ann', value: Buffer.from('admin').toString('base64') });
    const stale = await conclave([
      'map',
      'update',
      'users',
      'ann',
      'x',
      '--if-version',
      String(ann.version + 1),
    ]);
    expect(stale.code).toBe(exitCodes.failed);
    expect(stale.stderr).toMatch(/VERSION_MISMATCH/);
    expect(
      (await conclave(['map', 'update', 'users', 'ann', 'owner', '--if-version', String(ann.version)])).code,
    ).toBe(0);
    expect(await conclave(['map', 'get', 'users', 'ann'])).toMatchObject({ code: 0, stdout: 'owner\n' });
    expect((await conclave(['map', 'size', 'users'])).stdout).toBe('2\n');
    const lines = (await conclave(['map', 'entries', 'users'])).stdout.split('\n').filter((l) => l !== '');
    expect(lines.sort()).toEqual(['ann:owner', 'bob:dev']);
    const entries = await json(['map', 'entries', 'users']);
    expect(entries.map((e: { key: string }) => e.key).sort()).toEqual(['ann', 'bob']);
    expect((await conclave(['map', 'remove', 'users', 'bob'])).stdout).toBe(
      'Success! Removed bob from map users\n',
    );
    expect((await conclave(['map', 'remove', 'users', 'bob'])).stdout).toBe(
      'Nothing to remove: map users has no key bob\n',
    );
    expect(await conclave(['map', 'get', 'users', 'bob'])).toMatchObject({
      code: exitCodes.failed,
      stderr: 'Error! Map users has no key bob\n',
    });
    expect(await json(['map', 'clear', 'users'])).toEqual({ name: 'users', removed: 1 });
    expect((await conclave(['map', 'size', 'users'])).stdout).toBe('0\n');
  });

  it('refuses a name over 256 characters (BAD_REQUEST, exit 2)', async () => {
    const long = await conclave(['map', 'put', 'm'.repeat(257), 'k', 'v']);
    expect(long.code).toBe(exitCodes.usage);
    expect(long.stderr).toMatch(/\(BAD_REQUEST\)\n {2}fix the named parameter/);
  });
});

describe('conclave set', () => {
  it('adds, tests, lists, removes and clears elements', async () => {
    expect((await conclave(['set', 'add', 'nodes', 'n1'])).stdout).toBe('Success! Added n1 to set nodes\n');
    expect((await conclave(['set', 'add', 'nodes', 'n1'])).stdout).toBe('Set nodes has n1 already\n');
    expect((await conclave(['set', 'add', 'nodes', 'n2', '--ttl', '1h'])).code).toBe(0);
    expect(await conclave(['set', 'contains', 'nodes', 'n1'])).toMatchObject({ code: 0, stdout: 'true\n' });
    expect(await conclave(['set', 'contains', 'nodes', 'n9'])).toMatchObject({
      code: exitCodes.failed,
      stdout: 'false\n',
    });
    expect((await conclave(['set', 'size', 'nodes'])).stdout).toBe('2\n');
    expect((await conclave(['set', 'elements', 'nodes'])).stdout.split('\n').sort()).toEqual([
      '',
      'n1',
      'n2',
    ]);
    expect((await json(['set', 'elements', 'nodes'])).sort()).toEqual(['n1', 'n2']);
    expect(await json(['set', 'remove', 'nodes', 'n1'])).toEqual({
      name: 'nodes',
      element: 'n1',
      removed: true,
    });
    expect((await conclave(['set', 'remove', 'nodes', 'n1'])).stdout).toMatch(/^Nothing to remove/);
    expect((await conclave(['set', 'clear', 'nodes'])).stdout).toBe(
      'Success! Cleared set nodes (1 removed)\n',
    );
  });

  it('refuses an element over 512 characters (BAD_REQUEST, exit 2)', async () => {
    const long = await conclave(['set', 'add', 'nodes', 'e'.repeat(513)]);
    expect(long.code).toBe(exitCodes.usage);
    expect(long.stderr).toMatch(/args\.key has 513 characters.*\(BAD_REQUEST\)/);
  });
});
