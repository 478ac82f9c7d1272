/**
 * deploy/release.mjs lays out what the Docker image's runtime stage and a systemd machine
 * install from: the root manifest and lockfile and the shipped workspaces' published files.
 * Run here without --install (which needs npm's registry or cache); the install itself is
 * `npm ci --omit=dev` of those workspaces, checked in the Dockerfile's test.
 */
import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../processes.js';
import { repoFile, repoRoot, shippedWorkspaces } from './testing/repo.js';

const run = promisify(execFile);
let out = '';
let files: string[] = [];

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])),
  );
  return nested.flat();
}

beforeAll(async () => {
  assertBuilt();
  out = join(tmpdir(), `conclave-release-${process.pid}-${Date.now()}`);
  await run(process.execPath, [join(repoRoot, 'deploy/release.mjs'), out], {
    cwd: repoRoot,
    timeout: 60_000,
  });
  files = (await walk(out)).map((path) => relative(out, path)).sort();
}, 90_000);

afterAll(async () => {
  if (out !== '') await rm(out, { recursive: true, force: true });
});

describe('deploy/release.mjs', () => {
  it('copies the root manifest and lockfile unchanged', () => {
    expect(files).toContain('package.json');
    expect(files).toContain('package-lock.json');
  });

  it('lays out exactly the shipped workspaces, with their manifests and the CLI bin', () => {
    const workspaces = new Set(
      files.filter((f) => f.startsWith('packages/')).map((f) => f.split('/').slice(0, 2).join('/')),
    );
    expect([...workspaces].sort()).toEqual(shippedWorkspaces().sort());
    for (const workspace of shippedWorkspaces()) expect(files).toContain(`${workspace}/package.json`);
    expect(files).toContain('packages/cli/bin/conclave.js');
    expect(files).toContain('packages/cli/dist/conclave.js');
  });

  it('leaves out sources, tests, test helpers and build info', () => {
    const leaked = files.filter((f) => /\/src\/|\.test\.|\/testing\/|\.tsbuildinfo$/.test(f));
    expect(leaked).toEqual([]);
  });

  it('refuses a directory that is not empty', async () => {
    await expect(
      run(process.execPath, [join(repoRoot, 'deploy/release.mjs'), out], { cwd: repoRoot }),
    ).rejects.toMatchObject({
      code: 2,
    });
  });

  it('is what the Dockerfile runs in its build stage', () => {
    expect(repoFile('deploy/docker/Dockerfile')).toMatch(/^RUN node deploy\/release\.mjs \/out$/m);
  });
});
