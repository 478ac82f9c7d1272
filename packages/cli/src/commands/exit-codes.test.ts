import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from './io.js';
import { runBuiltCli } from './testing/built-cli.js';

/** An address nothing listens on: a command that connected would fail there with exit 3. */
const nowhere = '127.0.0.1:1';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conclave-exit-codes-'));
  await writeFile(join(dir, 'garbage.file'), randomBytes(4096));
  await writeFile(join(dir, 'empty.file'), '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('conclave exit codes, as the README states them', () => {
  it.each([
    [['frobnicate']],
    [['--no-such-option', 'kv', 'get', 'a']],
    [['agent', '--no-such-option']],
    [['agent', '--dev', '--log-format', 'pretty']],
    [['completion', 'fish']],
    // No command at all: the usage goes to stderr.
    [[]],
  ])('exits 2 on the usage error conclave %j', async (argv) => {
    const result = await runBuiltCli(argv, { cwd: dir });
    expect(result.code, result.stderr).toBe(exitCodes.usage);
    expect(result.stderr).not.toBe('');
  });

  it('exits 0 for --version and --help', async () => {
    expect((await runBuiltCli(['--version'])).code).toBe(exitCodes.ok);
    expect((await runBuiltCli(['kv', '--help'])).code).toBe(exitCodes.ok);
  });

  it.each([
    ['inspect', 'garbage.file'],
    ['inspect', 'empty.file'],
    ['restore', 'garbage.file'],
  ])('exits 2 when the local file given to snapshot %s (%s) is not an archive', async (command, file) => {
    // Verified before anything is sent: no server is needed to refuse it.
    const result = await runBuiltCli(
      ['snapshot', command, file, ...(command === 'restore' ? ['--http-addr', nowhere] : [])],
      {
        cwd: dir,
      },
    );
    expect(result.code, result.stderr).toBe(exitCodes.usage);
    expect(result.stderr).toMatch(/SNAPSHOT_ARCHIVE_INVALID/);
  });

  it('exits 2 for a snapshot file that does not exist, and 3 when the server cannot be reached', async () => {
    const missing = await runBuiltCli(['snapshot', 'inspect', 'missing.file'], { cwd: dir });
    expect(missing.code).toBe(exitCodes.usage);
    const unreachable = await runBuiltCli(['snapshot', 'save', 'out.snap', '--http-addr', nowhere], {
      cwd: dir,
    });
    expect(unreachable.code).toBe(exitCodes.error);
    expect(unreachable.stderr).toMatch(/CONNECTION_FAILED/);
  });
});
