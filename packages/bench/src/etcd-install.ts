/**
 * Finding the `etcd` binary for `--vs-etcd`, installing Debian's etcd-server package when
 * it is missing and this user may (root, or passwordless sudo). Anything else is reported,
 * and the comparison is skipped rather than failing the Conclave half of the benchmark.
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** apt may download and unpack for a while; it must still end. */
const aptTimeoutMs = 10 * 60_000;

/** The first executable `name` on `pathEnv` (a PATH value), or null. */
export function findExecutable(name: string, pathEnv: string | undefined): string | null {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here, or not executable: try the next directory.
    }
  }
  return null;
}

export interface Command {
  readonly command: string;
  readonly args: readonly string[];
}

export type InstallPlan =
  | { readonly kind: 'install'; readonly install: Command; readonly update: Command }
  | { readonly kind: 'cannot'; readonly reason: string };

const etcdPackage = 'etcd-server';

/** How this user can install etcd: as root directly, else through non-interactive sudo. */
export function planEtcdInstall(options: { isRoot: boolean; sudoPath: string | null }): InstallPlan {
  const apt = (args: readonly string[]): Command =>
    options.isRoot
      ? { command: 'apt-get', args }
      : { command: options.sudoPath ?? 'sudo', args: ['-n', 'apt-get', ...args] };
  if (!options.isRoot && options.sudoPath === null) {
    return {
      kind: 'cannot',
      reason: `etcd is not on PATH, and installing it needs root or sudo: run \`sudo apt-get install -y ${etcdPackage}\` (or put an etcd binary on PATH) and try again`,
    };
  }
  return {
    kind: 'install',
    install: apt(['install', '-y', '--no-install-recommends', etcdPackage]),
    update: apt(['update']),
  };
}

export type EtcdLookup =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: string };

/**
 * The path of `etcd`, installing it if needed and possible, or why it cannot be had.
 * apt's output goes to stderr: stdout carries only results.
 */
export function ensureEtcd(options: { log: (line: string) => void }): EtcdLookup {
  const found = findExecutable('etcd', process.env.PATH);
  if (found !== null) return { ok: true, path: found };
  const plan = planEtcdInstall({
    isRoot: process.getuid?.() === 0,
    sudoPath: findExecutable('sudo', process.env.PATH),
  });
  if (plan.kind === 'cannot') return { ok: false, reason: plan.reason };
  options.log(`bench: etcd is not on PATH; installing ${etcdPackage} with apt-get`);
  // A stale or missing package list is the usual reason the first attempt fails.
  const installed = run(plan.install) || (run(plan.update) && run(plan.install));
  const path = installed ? findExecutable('etcd', process.env.PATH) : null;
  if (path === null) {
    return {
      ok: false,
      reason: `installing ${etcdPackage} failed (apt's output is above); install etcd by hand and try again`,
    };
  }
  return { ok: true, path };
}

function run(command: Command): boolean {
  const result = spawnSync(command.command, command.args, {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: aptTimeoutMs,
  });
  return result.status === 0;
}

/** "3.4.23" from `etcd --version`; "unknown" if it does not say. */
export function etcdVersion(etcdPath: string): string {
  const result = spawnSync(etcdPath, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const match = /etcd Version:\s*(\S+)/.exec(result.stdout ?? '');
  return match?.[1] ?? 'unknown';
}
