#!/usr/bin/env node
// The SDK's API reference: TypeDoc (with typedoc-plugin-markdown) renders @conclave/client's
// exported types as markdown into docs/sdk/ (packages/client/typedoc.json).
//
//   node scripts/docs-sdk.mjs           regenerate docs/sdk/   (npm run docs:sdk)
//   node scripts/docs-sdk.mjs --check   fail if docs/sdk/ differs from what the sources give
//                                       (npm run docs:sdk:check, part of npm run lint)
//
// The output is deterministic (no source links, dates or git revisions), and it reads the
// sources, not the builds, so the check needs no build first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const docs = join(root, 'docs', 'sdk');
const options = join(root, 'packages', 'client', 'typedoc.json');
const check = process.argv.includes('--check');

function typedoc(out) {
  const bin = join(root, 'node_modules', '.bin', 'typedoc');
  const run = spawnSync(bin, ['--options', options, '--out', out, '--logLevel', 'Warn'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0) process.exit(run.status ?? 1);
}

/** Every file under `dir`, as paths relative to it. */
function files(dir) {
  const found = [];
  const walk = (at) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(dir, path));
    }
  };
  walk(dir);
  return found.sort();
}

if (!check) {
  typedoc(docs);
} else {
  const scratch = mkdtempSync(join(tmpdir(), 'conclave-docs-sdk-'));
  try {
    typedoc(scratch);
    const fresh = files(scratch);
    const committed = files(docs);
    const stale = [
      ...fresh.filter((file) => !committed.includes(file)).map((file) => `missing: ${file}`),
      ...committed.filter((file) => !fresh.includes(file)).map((file) => `not generated: ${file}`),
      ...fresh
        .filter((file) => committed.includes(file))
        .filter((file) => !readFileSync(join(scratch, file)).equals(readFileSync(join(docs, file))))
        .map((file) => `differs: ${file}`),
    ];
    if (stale.length > 0) {
      console.error(`docs/sdk/ is stale against the sources of @conclave/client:`);
      for (const line of stale.slice(0, 20)) console.error(`  ${line}`);
      if (stale.length > 20) console.error(`  … and ${stale.length - 20} more`);
      console.error('Regenerate it with `npm run docs:sdk` and commit the result.');
      process.exit(1);
    }
    console.log(`docs/sdk/ is up to date (${fresh.length} files).`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
