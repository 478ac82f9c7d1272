/**
 * deploy/docker/Dockerfile, checked offline (no base image can be pulled here): parsed into
 * stages and instructions by the small parser below, then held to what docs/deployment.md
 * promises: a build stage that builds from the lockfile, a runtime stage that installs only
 * the shipped workspaces' production dependencies, a non-root user, the data volume, the
 * health check on autopilot health, the exposed ports, and an exec-form entrypoint.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { configFromFile, resolveAgentConfig } from '@conclave/server';
import { describe, expect, it } from 'vitest';
import { repoFile, repoRoot, shippedWorkspaces, shutdownHandOffMsMax } from './testing/repo.js';

interface Instruction {
  readonly keyword: string;
  /** The arguments, continuation lines joined with single spaces. */
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly name: string | null;
  readonly from: string;
  readonly instructions: Instruction[];
}

/**
 * Dockerfile instructions: comments and blank lines dropped (also between continuation
 * lines, as Docker does), backslash continuations joined, keywords upper-cased.
 */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: { parts: string[]; line: number } | null = null;
  for (const [index, raw] of text.split('\n').entries()) {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const continues = trimmed.endsWith('\\');
    const part = continues ? trimmed.slice(0, -1).trim() : trimmed;
    pending ??= { parts: [], line: index + 1 };
    pending.parts.push(part);
    if (continues) continue;
    const joined = pending.parts.filter((p) => p !== '').join(' ');
    const match = /^(\S+)\s*(.*)$/.exec(joined);
    if (match === null) throw new Error(`line ${pending.line}: cannot parse "${joined}"`);
    instructions.push({ keyword: (match[1] ?? '').toUpperCase(), args: match[2] ?? '', line: pending.line });
    pending = null;
  }
  if (pending !== null) throw new Error(`line ${pending.line}: a continuation runs past the end`);
  return instructions;
}

/** Split into stages at each FROM (`FROM image [AS name]`); ARGs before the first FROM are dropped. */
function stagesOf(instructions: readonly Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (match === null) throw new Error(`line ${instruction.line}: cannot parse FROM ${instruction.args}`);
      stages.push({ from: match[1] ?? '', name: match[2] ?? null, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** An instruction's argument in exec form (a JSON array), or null in shell form. */
function execForm(args: string): string[] | null {
  if (!args.startsWith('[')) return null;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`not an exec-form array: ${args}`);
  }
  return parsed;
}

const instructions = parseDockerfile(repoFile('deploy/docker/Dockerfile'));
const stages = stagesOf(instructions);
const build = stages[0] as Stage;
const runtime = stages.at(-1) as Stage;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const runs = (stage: Stage) => all(stage, 'RUN').map((i) => i.args);
const agentConfig = configFromFile(join(repoRoot, 'deploy/docker/agent.yaml'));

describe('the Dockerfile parser', () => {
  it('joins continuations, skips comments between them, and splits stages', () => {
    const parsed = parseDockerfile(
      [
        'ARG V=1',
        'FROM base:$V AS one',
        'RUN a \\',
        '  # note',
        '    b \\',
        '    c',
        'FROM one',
        'USER 1',
      ].join('\n'),
    );
    expect(parsed.map((i) => [i.keyword, i.args, i.line])).toEqual([
      ['ARG', 'V=1', 1],
      ['FROM', 'base:$V AS one', 2],
      ['RUN', 'a b c', 3],
      ['FROM', 'one', 7],
      ['USER', '1', 8],
    ]);
    expect(stagesOf(parsed).map((s) => [s.from, s.name, s.instructions.length])).toEqual([
      ['base:$V', 'one', 1],
      ['one', null, 1],
    ]);
    expect(() => parseDockerfile('RUN a \\')).toThrow(/continuation/);
  });
});

describe('deploy/docker/Dockerfile', () => {
  it('has a build stage and a separate runtime stage on the same Node base', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(runtime.from).toBe(build.from);
    expect(build.from).toMatch(/^node:\$\{NODE_VERSION\}-/);
    const nodeVersion = instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_VERSION='));
    const engines = (JSON.parse(repoFile('package.json')) as { engines: { node: string } }).engines.node;
    expect(Number(nodeVersion?.args.split('=')[1])).toBeGreaterThanOrEqual(Number(/\d+/.exec(engines)?.[0]));
  });

  it('builds every workspace from the lockfile, then lays out only what the shipped packages publish', () => {
    const commands = runs(build);
    const ci = commands.findIndex((c) => /\bnpm ci\b/.test(c));
    const compile = commands.findIndex((c) => /\bnpm run build\b/.test(c));
    const release = commands.findIndex((c) => /node deploy\/release\.mjs \/out\b/.test(c));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(compile).toBeGreaterThan(ci);
    expect(release).toBeGreaterThan(compile);
    expect(commands[ci]).not.toMatch(/--omit=dev/);
  });

  it('installs only the production dependencies of the shipped workspaces in the runtime stage', () => {
    const installs = runs(runtime).filter((c) => /\bnpm (ci|install|i)\b/.test(c));
    expect(installs).toHaveLength(1);
    const install = installs[0] ?? '';
    expect(install).toMatch(/\bnpm ci\b/);
    expect(install).toMatch(/--omit=dev\b/);
    expect(install).toMatch(/--ignore-scripts\b/);
    const workspaces = [...install.matchAll(/(?:-w|--workspace)[ =](\S+)/g)].map((m) => m[1]);
    expect(workspaces).toEqual(shippedWorkspaces());
    // The runtime takes the build's output, not the sources.
    const copies = all(runtime, 'COPY').map((i) => i.args);
    expect(copies.filter((c) => c.startsWith('--from='))).toEqual(['--from=build /out/ ./']);
    expect(copies.some((c) => /\bpackages\//.test(c))).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignored = repoFile('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const pattern of ['.git', '**/node_modules', '**/dist']) expect(ignored).toContain(pattern);
    for (const stage of stages) {
      for (const copy of all(stage, 'COPY').filter((i) => !i.args.startsWith('--from='))) {
        const paths = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const source of paths.slice(0, -1)) {
          expect(existsSync(join(repoRoot, source)), `line ${copy.line}: ${source}`).toBe(true);
          const top = source.replace(/\/$/, '').split('/')[0] ?? '';
          expect(ignored, `line ${copy.line}: ${source} is excluded by .dockerignore`).not.toContain(top);
        }
      }
    }
  });

  it('runs as a non-root user, by number, in the runtime stage', () => {
    const users = all(runtime, 'USER').map((i) => i.args);
    const user = users.at(-1);
    expect(user).toMatch(/^\d+:\d+$/);
    expect(
      user
        ?.split(':')
        .map(Number)
        .every((id) => id > 0),
    ).toBe(true);
    // The user is created with that uid, and owns the data dir.
    const uid = user?.split(':')[0];
    expect(runs(runtime).some((c) => new RegExp(`useradd .*--uid ${uid}\\b`).test(c))).toBe(true);
    // Nothing runs after the switch as root again.
    const last = runtime.instructions.findLastIndex((i) => i.keyword === 'USER');
    expect(runtime.instructions.slice(last).some((i) => i.keyword === 'RUN')).toBe(false);
  });

  it('keeps the data dir the agent is configured with on a volume owned by that user', () => {
    const config = resolveAgentConfig([agentConfig, { nodeId: 's1', bootstrapExpect: 1 }]);
    expect(config.dataDir).toBe('/var/lib/conclave');
    const volumes = all(runtime, 'VOLUME').flatMap((i) => execForm(i.args) ?? i.args.split(/\s+/));
    expect(volumes).toEqual([config.dataDir]);
    expect(runs(runtime).some((c) => c.includes(`chown conclave:conclave ${config.dataDir}`))).toBe(true);
  });

  it('exposes the Raft and HTTP ports the image binds on every interface', () => {
    const config = resolveAgentConfig([agentConfig, { nodeId: 's1', bootstrapExpect: 1 }]);
    expect(config.bind).toEqual({ host: '0.0.0.0', port: 8300 });
    expect(config.httpAddr).toEqual({ host: '0.0.0.0', port: 8500 });
    const exposed = all(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed.sort()).toEqual([String(config.bind.port), String(config.httpAddr.port)].sort());
  });

  it('checks health with `conclave operator autopilot health` against the local HTTP address', () => {
    const checks = all(runtime, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const check = checks[0]?.args ?? '';
    const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/.exec(check);
    expect(match, check).not.toBeNull();
    const command = match?.[2] ?? '';
    expect(command).toMatch(
      /^conclave operator autopilot health --http-addr "\$\{CONCLAVE_HEALTHCHECK_ADDR:-127\.0\.0\.1:8500\}"/,
    );
    // Unhealthy (1) and unreachable (3) both report 1, the code Docker documents.
    expect(command).toMatch(/\|\| exit 1$/);
    const options = Object.fromEntries(
      (match?.[1] ?? '')
        .trim()
        .split(/\s+/)
        .filter((o) => o !== '')
        .map((o) => o.replace(/^--/, '').split('=') as [string, string]),
    );
    expect(Object.keys(options).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
  });

  it('starts the agent in exec form, with the image config, and stops it with SIGTERM', () => {
    const entrypoints = all(runtime, 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    expect(execForm(entrypoints[0]?.args ?? '')).toEqual([
      'conclave',
      'agent',
      '--config',
      '/etc/conclave/agent.yaml',
    ]);
    expect(all(runtime, 'CMD')).toEqual([]);
    expect(all(runtime, 'STOPSIGNAL').map((i) => i.args)).toEqual(['SIGTERM']);
    expect(
      all(runtime, 'COPY').some((i) => i.args === 'deploy/docker/agent.yaml /etc/conclave/agent.yaml'),
    ).toBe(true);
    // `conclave` is found on PATH, from the installed workspaces' bin links.
    const env = all(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/PATH=\/opt\/conclave\/node_modules\/\.bin:\$PATH/);
    expect(all(runtime, 'WORKDIR').map((i) => i.args)).toEqual(['/opt/conclave']);
    // The default hand-off fits in `docker stop`'s default 10 s at the default tick; the
    // guide says to pass --stop-timeout 60, which covers the largest tick too.
    expect(shutdownHandOffMsMax()).toBeLessThan(60_000);
  });
});
