/**
 * deploy/systemd, checked offline: the units parsed into sections and keys and held to what
 * docs/deployment.md promises (a dedicated user, the state directory the config points at,
 * restarts, the stop timeout of a leadership hand-off, the hardening), the example config
 * resolved by the agent's own config code, and, where systemd-analyze is installed, both units
 * verified by systemd itself (unknown keys and unparsable values are reported there).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configFromEnv, configFromFile, resolveAgentConfig } from '@conclave/server';
import { describe, expect, it } from 'vitest';
import { repoFile, repoRoot, shutdownHandOffMsMax } from './testing/repo.js';

const run = promisify(execFile);

type Unit = Map<string, Map<string, string[]>>;

/**
 * A unit file: `[Section]` headers and `Key=Value` lines, comments (# ;) and blank lines
 * skipped, backslash continuations joined; a key given again adds a value, and an empty
 * assignment (`Key=`) resets the list to [''] as systemd resets it.
 */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length)
      line = `${line.slice(0, -1).trimEnd()} ${(lines[++i] ?? '').trim()}`;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header !== null) {
      section = new Map();
      unit.set(header[1] ?? '', section);
      continue;
    }
    const assignment = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (assignment === null || section === null)
      throw new Error(`line ${i + 1}: not a key=value in a section`);
    const [, key = '', value = ''] = assignment;
    section.set(key, value === '' ? [''] : [...(section.get(key) ?? []).filter((v) => v !== ''), value]);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** systemd time spans: a bare number is seconds; units s, min, ms. */
function seconds(span: string | undefined): number {
  const match = /^(\d+)\s*(ms|s|min)?$/.exec(span ?? '');
  if (match === null) throw new Error(`not a time span this test reads: ${span}`);
  const factor = { ms: 0.001, s: 1, min: 60 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * factor;
}

const server = parseUnit(repoFile('deploy/systemd/conclave.service'));
const snapshotAgent = parseUnit(repoFile('deploy/systemd/conclave-snapshot-agent.service'));
const units = { 'conclave.service': server, 'conclave-snapshot-agent.service': snapshotAgent };

describe('the unit parser', () => {
  it('reads sections, repeated and reset keys, and continuations', () => {
    const unit = parseUnit(
      ['# c', '[Service]', 'A=1', 'A=2', 'B=x \\', '  y', 'C=3', 'C=', '; c', '[Install]', 'W=m'].join('\n'),
    );
    expect(unit.get('Service')?.get('A')).toEqual(['1', '2']);
    expect(unit.get('Service')?.get('B')).toEqual(['x y']);
    expect(unit.get('Service')?.get('C')).toEqual(['']);
    expect(value(unit, 'Install', 'W')).toBe('m');
    expect(() => parseUnit('A=1')).toThrow(/section/);
  });
});

describe('deploy/systemd/conclave.service', () => {
  it('runs `conclave agent` from the release, with its config file, as a dedicated user', () => {
    expect(value(server, 'Service', 'Type')).toBe('exec');
    expect(value(server, 'Service', 'User')).toBe('conclave');
    expect(value(server, 'Service', 'Group')).toBe('conclave');
    expect(value(server, 'Service', 'ExecStart')).toBe(
      '/opt/conclave/node_modules/.bin/conclave agent --config /etc/conclave/conclave.yaml',
    );
    expect(value(server, 'Service', 'EnvironmentFile')).toBe('-/etc/conclave/conclave.env');
    expect(value(server, 'Unit', 'After')).toMatch(/\bnetwork-online\.target\b/);
    expect(value(server, 'Unit', 'Wants')).toMatch(/\bnetwork-online\.target\b/);
    expect(value(server, 'Install', 'WantedBy')).toBe('multi-user.target');
  });

  it("keeps the config's data dir in the StateDirectory systemd creates for that user", () => {
    const config = resolveAgentConfig([configFromFile(join(repoRoot, 'deploy/systemd/conclave.yaml'))]);
    expect(config.dataDir).toBe(`/var/lib/${value(server, 'Service', 'StateDirectory')}`);
    expect(value(server, 'Service', 'StateDirectoryMode')).toBe('0700');
    expect(value(server, 'Service', 'WorkingDirectory')).toBe(config.dataDir);
  });

  it('restarts on failure, but not on a refused setting, and not forever', () => {
    expect(value(server, 'Service', 'Restart')).toBe('on-failure');
    expect(seconds(value(server, 'Service', 'RestartSec'))).toBeGreaterThan(0);
    // `conclave agent` exits 2 on a setting it refuses (an expected error), 1 on anything else.
    expect(repoFile('packages/cli/src/commands/agent.ts')).toContain(
      'process.exit(server.isExpectedError(error) ? 2 : 1)',
    );
    expect(value(server, 'Service', 'RestartPreventExitStatus')).toBe('2');
    expect(seconds(value(server, 'Unit', 'StartLimitIntervalSec'))).toBeGreaterThan(0);
    expect(Number(value(server, 'Unit', 'StartLimitBurst'))).toBeGreaterThan(1);
  });

  it('stops with SIGTERM to the agent and waits out the leadership hand-off', () => {
    expect(value(server, 'Service', 'KillSignal')).toBe('SIGTERM');
    expect(value(server, 'Service', 'KillMode')).toBe('mixed');
    expect(seconds(value(server, 'Service', 'TimeoutStopSec')) * 1000).toBeGreaterThan(
      shutdownHandOffMsMax(),
    );
  });

  it('raises the open files limit', () => {
    expect(Number(value(server, 'Service', 'LimitNOFILE'))).toBeGreaterThanOrEqual(65_536);
  });
});

describe('both units', () => {
  it.each(Object.entries(units))('%s is hardened', (_name, unit) => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallArchitectures: 'native',
      SystemCallFilter: '@system-service',
      UMask: '0077',
    };
    for (const [key, want] of Object.entries(expected)) expect(value(unit, 'Service', key), key).toBe(want);
    // V8's JIT writes and executes the same pages: this would kill the server at start.
    expect(unit.get('Service')?.has('MemoryDenyWriteExecute')).toBe(false);
    expect(value(unit, 'Service', 'User')).not.toBe('root');
  });

  it('the snapshot agent saves into its own state directory, one agent active per cluster', () => {
    const exec = value(snapshotAgent, 'Service', 'ExecStart') ?? '';
    expect(exec).toMatch(/^\/opt\/conclave\/node_modules\/\.bin\/conclave snapshot agent /);
    expect(exec).toMatch(/--interval \S+/);
    expect(exec).toMatch(/--retain \d+/);
    expect(exec).toContain(`--dir /var/lib/${value(snapshotAgent, 'Service', 'StateDirectory')}`);
    expect(exec).not.toMatch(/--lock-key/);
    expect(value(snapshotAgent, 'Service', 'Restart')).toBe('on-failure');
    expect(value(snapshotAgent, 'Unit', 'After')).toMatch(/\bconclave\.service\b/);
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))(
    'pass `systemd-analyze verify` without a warning',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'conclave-units-'));
      try {
        const paths: string[] = [];
        for (const name of Object.keys(units)) {
          // The release is not installed here: point ExecStart at an executable that exists.
          const text = repoFile(`deploy/systemd/${name}`).replace(
            /^ExecStart=\/opt\/conclave\/node_modules\/\.bin\/conclave /m,
            `ExecStart=${process.execPath} `,
          );
          const path = join(dir, name);
          await writeFile(path, text);
          paths.push(path);
        }
        const { stdout, stderr } = await run('/usr/bin/systemd-analyze', ['verify', '--man=no', ...paths], {
          timeout: 30_000,
        });
        expect(`${stdout}${stderr}`).toBe('');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('the example settings', () => {
  it('conclave.yaml forms a 3-server cluster from one list of addresses other machines can reach', () => {
    const config = resolveAgentConfig([configFromFile(join(repoRoot, 'deploy/systemd/conclave.yaml'))]);
    expect(config.bootstrapExpect).toBe(3);
    // The same list on every machine: plain addresses (no ids), as many as bootstrapExpect,
    // this machine's own Raft address among them.
    expect(config.join.map((t) => t.nodeId)).toEqual([null, null, null]);
    const listed = config.join.map((t) => `${t.raft.host}:${t.raft.port}`);
    expect(new Set(listed).size).toBe(config.bootstrapExpect);
    expect(listed).toContain(`${config.bind.host}:${config.bind.port}`);
    const unreachable = /^(127\.|0\.0\.0\.0$|::$|localhost$)/;
    expect(config.bind.host).not.toMatch(unreachable);
    for (const target of config.join) expect(target.raft.host).not.toMatch(unreachable);
    // Bound to a reachable address, it needs no advertise: the bound address is announced.
    expect(config.advertise).toBeNull();
    // Other servers forward requests to the HTTP address this one announces: never loopback.
    expect(config.httpAddr.host).not.toMatch(/^(127\.|localhost$)/);
  });

  it("conclave.yaml's commented advertise example is a host without a port, which the agent accepts", () => {
    const file = join(repoRoot, 'deploy/systemd/conclave.yaml');
    const examples = [
      ...repoFile('deploy/systemd/conclave.yaml').matchAll(/^#\s*advertise:\s*(\S+)\s*$/gm),
    ].map((m) => m[1] ?? '');
    expect(examples).toHaveLength(1);
    const host = examples[0] ?? '';
    expect(host).not.toMatch(/:/);
    const config = resolveAgentConfig([configFromFile(file), { bind: '0.0.0.0:8300', advertise: host }]);
    expect(config.advertise).toBe(host);
    // The form the guide warns about is refused.
    expect(() => resolveAgentConfig([configFromFile(file), { advertise: `${host}:8300` }])).toThrow(
      /advertise must be a host name or IP address \(no port\)/,
    );
  });

  it('conclave.env sets only NODE_OPTIONS and settings the agent knows, commented or not', () => {
    const lines = repoFile('deploy/systemd/conclave.env')
      .split('\n')
      .map((l) => l.replace(/^#\s*/, '').trim())
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const [name = '', text = ''] = line.split(/=(.*)/s);
      if (name === 'NODE_OPTIONS') continue;
      expect(Object.keys(configFromEnv({ [name]: text })), name).toHaveLength(1);
    }
  });
});
