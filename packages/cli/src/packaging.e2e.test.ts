/**
 * The shipped packages as a user gets them: packed with `npm pack`, installed from the
 * tarballs into an empty directory (third-party packages from npm's cache), then used the
 * way the README says: the `conclave` command, `@conclave/client` from plain ESM and from
 * TypeScript with `moduleResolution: nodenext`, and a server embedded with `startAgent`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assertBuilt, freePorts } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const shipped = ['raft', 'protocol', 'storage', 'server', 'client', 'cli'] as const;
/** Packing and installing six packages from the cache takes 10-30 s here; give it room. */
const installTimeoutMs = 240_000;

interface PackedFile {
  readonly path: string;
}
interface Packed {
  readonly name: string;
  readonly version: string;
  readonly filename: string;
  readonly files: readonly PackedFile[];
}

let workDir = '';
let packed: Packed[] = [];

async function inWork(command: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(command, [...args], { cwd: workDir, timeout: installTimeoutMs });
  return stdout;
}

beforeAll(async () => {
  assertBuilt();
  workDir = await mkdtemp(join(tmpdir(), 'conclave-install-'));
  const workspaces = shipped.flatMap((name) => ['-w', `packages/${name}`]);
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--pack-destination', workDir, ...workspaces, '--ignore-scripts'],
    { cwd: repoRoot, timeout: installTimeoutMs, maxBuffer: 64 * 1024 * 1024 },
  );
  packed = JSON.parse(stdout) as Packed[];
  // Every @conclave package resolves to its tarball, never to the registry.
  const tarballs = Object.fromEntries(packed.map((p) => [p.name, `file:./${p.filename}`]));
  const typesNode = JSON.parse(
    readFileSync(join(repoRoot, 'node_modules/@types/node/package.json'), 'utf8'),
  ) as { version: string };
  await writeFile(
    join(workDir, 'package.json'),
    JSON.stringify({
      name: 'conclave-install-check',
      private: true,
      type: 'module',
      dependencies: tarballs,
      devDependencies: { '@types/node': typesNode.version },
      overrides: tarballs,
    }),
  );
  await inWork('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts']);
}, installTimeoutMs);

afterAll(async () => {
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('are the six shipped packages, publishable, with no test, testing or bench code', () => {
    expect(packed.map((p) => p.name).sort()).toEqual(
      [
        '@conclave/client',
        '@conclave/protocol',
        '@conclave/raft',
        '@conclave/server',
        '@conclave/storage',
        'conclave',
      ].sort(),
    );
    for (const p of packed) {
      const manifest = JSON.parse(
        readFileSync(
          join(
            repoRoot,
            'packages',
            p.name.replace(/^@conclave\//, '').replace(/^conclave$/, 'cli'),
            'package.json',
          ),
          'utf8',
        ),
      ) as Record<string, unknown>;
      expect(manifest.private, p.name).toBeUndefined();
      for (const field of ['license', 'engines', 'files'])
        expect(manifest[field], `${p.name} ${field}`).toBeDefined();
      const paths = p.files.map((f) => f.path);
      expect(paths, p.name).toContain('package.json');
      const leaked = paths.filter((path) => /\.test\.|\/testing\/|bench|\.tsbuildinfo/.test(path));
      expect(leaked, `${p.name} ships test, testing or bench files`).toEqual([]);
    }
    const server = packed.find((p) => p.name === '@conclave/server');
    const serverPaths = server?.files.map((f) => f.path) ?? [];
    // The server ships no client, CLI or storage code of its own: those are their packages.
    expect(serverPaths.filter((path) => /^dist\/(client|cli|storage|bench)\//.test(path))).toEqual([]);
  });

  it('install a `conclave` command that prints its version and help', async () => {
    const version = await inWork('npx', ['--no-install', 'conclave', '--version']);
    expect(version.trim()).toBe(packed.find((p) => p.name === 'conclave')?.version);
    const help = await inWork('npx', ['--no-install', 'conclave', '--help']);
    for (const command of ['agent', 'kv', 'lock', 'operator', 'snapshot']) expect(help).toMatch(command);
  });

  it('let a plain ESM script import @conclave/client and @conclave/protocol', async () => {
    await writeFile(
      join(workDir, 'client-check.mjs'),
      [
        "import { ConclaveClient, ConclaveClientError } from '@conclave/client';",
        "import { groupOfKey } from '@conclave/protocol';",
        "const client = new ConclaveClient({ addresses: ['127.0.0.1:8500', '127.0.0.1:8501'] });",
        'console.log(typeof ConclaveClientError, groupOfKey({ key: "{app}/a", groupCount: 8 }), client.baseUrl);',
        'await client.close();',
      ].join('\n'),
    );
    const out = await inWork('node', ['client-check.mjs']);
    expect(out.trim()).toMatch(/^function \d http:\/\/127\.0\.0\.1:8500$/);
  });

  it('type-check from TypeScript with moduleResolution nodenext', async () => {
    await writeFile(
      join(workDir, 'check.ts'),
      [
        "import { ConclaveClient, type KvPair } from '@conclave/client';",
        "import { resolveAgentConfig, startAgent } from '@conclave/server';",
        'export async function roundTrip(): Promise<KvPair | null> {',
        '  const agent = await startAgent({ config: resolveAgentConfig([{ dev: true }]) });',
        '  const { host, port } = agent.httpAddress;',
        "  const client = new ConclaveClient({ address: host + ':' + String(port) });",
        "  await client.kvPut({ key: 'k', value: 'v' });",
        "  const { value } = await client.kvGet('k');",
        '  await client.close();',
        '  await agent.stop();',
        '  return value;',
        '}',
        // A wrong call must fail to type-check, or this check proves nothing.
        '// @ts-expect-error: the client has no such option',
        "new ConclaveClient({ host: 'x' });",
      ].join('\n'),
    );
    await writeFile(
      join(workDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
        files: ['check.ts'],
      }),
    );
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    await expect(inWork('node', [tsc, '-p', '.'])).resolves.toBe('');
  });

  it('embed a server with startAgent and talk to it with the client, as the README shows', async () => {
    const [http, raft] = await freePorts(2);
    const dataDir = join(workDir, 'data');
    await writeFile(
      join(workDir, 'embed.mjs'),
      [
        "import { ConclaveClient } from '@conclave/client';",
        "import { resolveAgentConfig, startAgent } from '@conclave/server';",
        `const config = resolveAgentConfig([{ dev: true, dataDir: ${JSON.stringify(dataDir)}, logLevel: 'error', httpAddr: '127.0.0.1:${http}', bind: '127.0.0.1:${raft}' }]);`,
        'const agent = await startAgent({ config });',
        `const client = new ConclaveClient({ address: '127.0.0.1:${http}' });`,
        "await client.kvPut({ key: 'greeting', value: 'hello' });",
        "const { value } = await client.kvGet('greeting');",
        'console.log(Buffer.from(value.value).toString());',
        'await client.close();',
        'await agent.stop();',
      ].join('\n'),
    );
    expect((await inWork('node', ['embed.mjs'])).trim()).toBe('hello');
  });
});
