/**
 * A 3-member etcd cluster on loopback for `--vs-etcd`: static bootstrap, distinct client
 * and peer ports, data dirs under one temp dir, etcd's defaults otherwise (fsync on every
 * commit, no auto-compaction). Ready once every member answers /health.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, pollUntil } from '@conclave/testkit';
import { assertAllRunning, BenchProcess, processesInTempDir } from './bench-process.js';
import type { Cleanup, Resource } from './cleanup.js';

const loopback = '127.0.0.1';
const healthTimeoutMs = 30_000;
const healthPollMs = 100;
const healthRequestMs = 2000;

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export interface EtcdCluster {
  readonly clientUrls: readonly string[];
  /** Registered with the Cleanup passed in: release it there to stop the cluster. */
  readonly resource: Resource;
}

const peerUrl = (m: EtcdMember) => `http://${loopback}:${m.peerPort}`;
const clientUrl = (m: EtcdMember) => `http://${loopback}:${m.clientPort}`;

/** The command line of one member of a statically bootstrapped cluster. */
export function etcdMemberArgs(options: {
  member: EtcdMember;
  members: readonly EtcdMember[];
  dataDir: string;
  clusterToken: string;
}): string[] {
  const { member, members } = options;
  return [
    ...['--name', member.name, '--data-dir', options.dataDir],
    ...['--listen-client-urls', clientUrl(member), '--advertise-client-urls', clientUrl(member)],
    ...['--listen-peer-urls', peerUrl(member), '--initial-advertise-peer-urls', peerUrl(member)],
    ...['--initial-cluster', members.map((m) => `${m.name}=${peerUrl(m)}`).join(',')],
    // A fresh token per run: members of an earlier run can never join this cluster.
    ...['--initial-cluster-state', 'new', '--initial-cluster-token', options.clusterToken],
    ...['--logger', 'zap', '--log-level', 'error'],
  ];
}

export async function startEtcdCluster(options: {
  cleanup: Cleanup;
  etcdPath: string;
}): Promise<EtcdCluster> {
  const names = ['e1', 'e2', 'e3'];
  const ports = await freePorts(names.length * 2);
  const members = names.map((name, i) => ({
    name,
    clientPort: ports[i] ?? 0,
    peerPort: ports[names.length + i] ?? 0,
  }));
  const root = mkdtempSync(join(tmpdir(), 'conclave-bench-etcd-'));
  const processes: BenchProcess[] = [];
  const resource: Resource = processesInTempDir({ name: 'etcd cluster', processes, root });
  options.cleanup.add(resource);
  const clusterToken = `conclave-bench-${process.pid}-${Date.now()}`;
  // etcd 3.4 runs on arm64 only when told to; harmless elsewhere.
  const env = process.arch === 'arm64' ? { ETCD_UNSUPPORTED_ARCH: 'arm64' } : {};
  for (const member of members) {
    const args = etcdMemberArgs({ member, members, dataDir: join(root, member.name), clusterToken });
    processes.push(new BenchProcess({ name: `etcd ${member.name}`, command: options.etcdPath, args, env }));
  }
  const clientUrls = members.map(clientUrl);
  await pollUntil(
    async () => {
      const healthy = await Promise.all(clientUrls.map(isHealthy));
      return healthy.every(Boolean) ? true : undefined;
    },
    {
      timeoutMs: healthTimeoutMs,
      intervalMs: healthPollMs,
      what: 'every etcd member to report healthy',
      giveUp: () => assertAllRunning(processes),
    },
  );
  return { clientUrls, resource };
}

async function isHealthy(url: string): Promise<boolean> {
  const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(healthRequestMs) });
  const body: unknown = await response.json();
  return (
    response.status === 200 &&
    typeof body === 'object' &&
    body !== null &&
    (body as Record<string, unknown>).health === 'true'
  );
}
