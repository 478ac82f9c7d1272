import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { settledLeadership } from './conclave-cluster.js';
import { etcdMemberArgs } from './etcd-cluster.js';
import { findExecutable, planEtcdInstall } from './etcd-install.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('finding and installing etcd', () => {
  it('finds the first executable of that name on PATH, skipping non-executable files', () => {
    const a = mkdtempSync(join(tmpdir(), 'bench-path-a-'));
    const b = mkdtempSync(join(tmpdir(), 'bench-path-b-'));
    dirs.push(a, b);
    writeFileSync(join(a, 'etcd'), '#!/bin/sh\n');
    chmodSync(join(a, 'etcd'), 0o644);
    writeFileSync(join(b, 'etcd'), '#!/bin/sh\n');
    chmodSync(join(b, 'etcd'), 0o755);
    expect(findExecutable('etcd', [a, b].join(delimiter))).toBe(join(b, 'etcd'));
    expect(findExecutable('etcd', a)).toBeNull();
    expect(findExecutable('etcd', undefined)).toBeNull();
  });

  it('installs with apt-get as root, through non-interactive sudo otherwise, and says why it cannot', () => {
    expect(planEtcdInstall({ isRoot: true, sudoPath: null })).toEqual({
      kind: 'install',
      install: { command: 'apt-get', args: ['install', '-y', '--no-install-recommends', 'etcd-server'] },
      update: { command: 'apt-get', args: ['update'] },
    });
    const viaSudo = planEtcdInstall({ isRoot: false, sudoPath: '/usr/bin/sudo' });
    expect(viaSudo.kind === 'install' && viaSudo.install).toEqual({
      command: '/usr/bin/sudo',
      // -n: never prompt, so a benchmark cannot hang waiting for a password.
      args: ['-n', 'apt-get', 'install', '-y', '--no-install-recommends', 'etcd-server'],
    });
    const cannot = planEtcdInstall({ isRoot: false, sudoPath: null });
    expect(cannot.kind).toBe('cannot');
    expect(cannot.kind === 'cannot' && cannot.reason).toMatch(/apt-get install -y etcd-server/);
  });
});

describe('etcd member arguments', () => {
  it('bootstraps three members on loopback, each on its own client and peer port', () => {
    const members = [
      { name: 'e1', clientPort: 1001, peerPort: 2001 },
      { name: 'e2', clientPort: 1002, peerPort: 2002 },
      { name: 'e3', clientPort: 1003, peerPort: 2003 },
    ];
    const member = members[1] ?? members[0];
    if (member === undefined) throw new Error('no member');
    const args = etcdMemberArgs({ member, members, dataDir: '/tmp/x/e2', clusterToken: 'tok' });
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--name')).toBe('e2');
    expect(flag('--data-dir')).toBe('/tmp/x/e2');
    expect(flag('--listen-client-urls')).toBe('http://127.0.0.1:1002');
    expect(flag('--advertise-client-urls')).toBe('http://127.0.0.1:1002');
    expect(flag('--listen-peer-urls')).toBe('http://127.0.0.1:2002');
    expect(flag('--initial-advertise-peer-urls')).toBe('http://127.0.0.1:2002');
    expect(flag('--initial-cluster')).toBe(
      'e1=http://127.0.0.1:2001,e2=http://127.0.0.1:2002,e3=http://127.0.0.1:2003',
    );
    expect(flag('--initial-cluster-state')).toBe('new');
    expect(flag('--initial-cluster-token')).toBe('tok');
    // etcd's default durability is what the comparison is against.
    expect(args).not.toContain('--unsafe-no-fsync');
  });
});

describe('settledLeadership', () => {
  const view = (nodeId: string, leaders: (string | null)[]) => ({
    nodeId,
    groups: leaders.map((leaderId) => ({ leaderId, role: leaderId === nodeId ? 'leader' : 'follower' })),
  });

  it('counts groups per leader once all servers agree and leaders are spread evenly', () => {
    const leaders = ['s1', 's2', 's3', 's1'];
    expect(settledLeadership(['s1', 's2', 's3'].map((id) => view(id, leaders)))).toEqual({
      s1: 2,
      s2: 1,
      s3: 1,
    });
  });

  it('is not settled while a group has no leader, servers disagree, or one server leads too many', () => {
    const ids = ['s1', 's2', 's3'];
    expect(settledLeadership(ids.map((id) => view(id, ['s1', null, 's3'])))).toBeUndefined();
    expect(
      settledLeadership([view('s1', ['s1', 's2']), view('s2', ['s1', 's2']), view('s3', ['s1', 's3'])]),
    ).toBeUndefined();
    // Fair share of 4 groups over 3 servers is 2: s1 leading 3 is still to be balanced.
    expect(settledLeadership(ids.map((id) => view(id, ['s1', 's1', 's1', 's2'])))).toBeUndefined();
    expect(settledLeadership([])).toBeUndefined();
  });
});
