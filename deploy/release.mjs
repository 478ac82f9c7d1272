#!/usr/bin/env node
// Lays out a Conclave server release in a directory: the root package.json and lockfile, and
// for each shipped workspace (every workspace whose package.json is not private) exactly the
// files `npm pack` would publish. With --install it then installs their production
// dependencies from the lockfile, which is what the Docker image's runtime stage does:
//
//   npm ci && npm run build                      # in a clone, once
//   node deploy/release.mjs --install /opt/conclave-0.1.0
//   /opt/conclave-0.1.0/node_modules/.bin/conclave --version
//
// The result runs on machines of the same OS and CPU architecture as the one that installed
// it (msgpackr's optional native module is chosen per platform). See docs/deployment.md.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The workspaces a release ships: those not marked private, in the root's order. */
export function shippedWorkspaces(repoRoot = root) {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  return manifest.workspaces.filter(
    (workspace) =>
      JSON.parse(readFileSync(join(repoRoot, workspace, 'package.json'), 'utf8')).private !== true,
  );
}

/** `npm ci` flags that install only the shipped workspaces' production dependencies. */
export function installArgs(workspaces) {
  return [
    'ci',
    '--omit=dev',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    ...workspaces.flatMap((w) => ['-w', w]),
  ];
}

function main(argv) {
  const install = argv.includes('--install');
  const positional = argv.filter((arg) => !arg.startsWith('--'));
  if (positional.length !== 1 || argv.some((arg) => arg.startsWith('--') && arg !== '--install')) {
    process.stderr.write('usage: node deploy/release.mjs [--install] <empty-or-new-directory>\n');
    process.exit(2);
  }
  const out = resolve(positional[0]);
  if (existsSync(out) && readdirSync(out).length > 0) {
    process.stderr.write(`release.mjs: ${out} is not empty\n`);
    process.exit(2);
  }
  const workspaces = shippedWorkspaces();
  for (const workspace of workspaces) {
    if (!existsSync(join(root, workspace, 'dist'))) {
      process.stderr.write(
        `release.mjs: ${workspace}/dist is missing; run npm ci (or npm run build) first\n`,
      );
      process.exit(2);
    }
  }
  // npm's own view of each package's published files (the `files` field and its exclusions).
  const packed = JSON.parse(
    execFileSync(
      'npm',
      ['pack', '--dry-run', '--json', '--ignore-scripts', ...workspaces.flatMap((w) => ['-w', w])],
      { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    ),
  );
  const byName = new Map(packed.map((p) => [p.name, p.files]));
  mkdirSync(out, { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(root, file), join(out, file));
  for (const workspace of workspaces) {
    const { name } = JSON.parse(readFileSync(join(root, workspace, 'package.json'), 'utf8'));
    const files = byName.get(name);
    if (files === undefined) throw new Error(`npm pack did not list ${name} (${workspace})`);
    for (const { path } of files) {
      const target = join(out, workspace, path);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(root, workspace, path), target);
    }
  }
  process.stdout.write(`release laid out in ${out}: ${workspaces.join(', ')}\n`);
  if (install) {
    execFileSync('npm', installArgs(workspaces), { cwd: out, stdio: 'inherit' });
    process.stdout.write(`installed: ${join(out, 'node_modules/.bin/conclave')}\n`);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2));
}
