/**
 * Failover with real processes: clients write through a server that stays up while the
 * leader of their keys' group is killed with SIGKILL mid-stream. Checks that no
 * acknowledged write is lost, that writes resume within a few election timeouts, and that
 * the killed server, restarted from its data dir, catches up. Needs `npm run build`.
 */

import { groupOfKey } from '@conclave/protocol';
import { assertBuilt, forEachLimited, waitFor } from '@conclave/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AckingWriter, type WriteRecord } from './testing/acking-writer.js';
import { type ConsulClient, ConsulCluster } from './testing/consul-cluster.js';

const groups = 4;
const tickMs = 20;
/** The agent's election timeout is 10 ticks; followers campaign after 1 to 2 of them. */
const electionTimeoutMs = 10 * tickMs;
/**
 * Writes must resume within this many election timeouts of the kill: detection takes up to
 * two, PreVote and the vote one round trip each, and the rest is slack for two shared cores.
 */
const resumeElectionTimeoutsMax = 10;
const tag = 'failover';
const keyOf = (sequence: number) => `{${tag}}/k-${String(sequence).padStart(6, '0')}`;

let cluster: ConsulCluster | null = null;

beforeAll(() => assertBuilt());

afterEach(async (context) => {
  if (cluster === null) return;
  if (context.task.result?.state === 'fail') {
    for (const server of cluster.servers) {
      process.stderr.write(`---- ${server.nodeId} (last run) ----\n${server.output.slice(-4000)}\n`);
    }
  }
  await cluster.destroy();
  expect(cluster.processes.liveChildren()).toEqual([]);
  cluster = null;
});

describe('failover of a group leader under a stream of writes', () => {
  it('loses no acknowledged write, resumes within a few election timeouts, and the restarted leader catches up', {
    timeout: 60_000,
  }, async () => {
    const running = await ConsulCluster.start({
      size: 3,
      groups,
      tickMs,
      requestTimeoutMs: 5_000,
      readyTimeoutMs: 20_000,
    });
    cluster = running;
    const groupId = groupOfKey({ key: keyOf(0), groupCount: groups });
    // agent/self of every server, agreed: the leader of the keys' group is to be killed,
    // and the clients write through another server.
    const plannedVictim = (await running.balancedLeaders(20_000)).get(groupId);
    const [entry, bystander] = running.servers.filter((s) => s.nodeId !== plannedVictim);
    if (plannedVictim === undefined || entry === undefined || bystander === undefined) {
      throw new Error(`no leader for group ${groupId}, or fewer than three servers`);
    }
    const writer = new AckingWriter({
      client: running.client(entry.nodeId),
      keyOf,
      writesMax: 50_000,
      pauseAfterFailureMs: tickMs,
    });
    const kill = await killLeaderMidStream({ cluster: running, writer, groupId, entry: entry.nodeId });
    const records = writer.records;
    const resumeMs =
      records
        .filter((r) => r.startedMs >= kill.atMs && r.outcome === 'acked')
        .reduce((first, r) => Math.min(first, r.endedMs), Number.POSITIVE_INFINITY) - kill.atMs;
    process.stdout.write(
      `failover: killed ${kill.victimId} (leader of group ${groupId}) with ${kill.inFlight} writes in flight; ` +
        `writes through ${entry.nodeId} resumed ${resumeMs} ms later ` +
        `(${(resumeMs / electionTimeoutMs).toFixed(1)} election timeouts of ${electionTimeoutMs} ms); ` +
        `${summarize(records)}; ${writeLatency(records)}\n`,
    );

    // Plain sets are never refused: only 5xx and no-answer failures are allowed.
    expect(records.filter((r) => r.outcome === 'refused').slice(0, 5)).toEqual([]);
    expect(kill.inFlight, 'the kill landed mid-stream').toBeGreaterThan(0);
    // (b) Service resumed within a few election timeouts.
    expect(resumeMs).toBeLessThan(resumeElectionTimeoutsMax * electionTimeoutMs);

    // (a) Every acknowledged write reads back, consistently, through both surviving servers.
    const acked = writer.acked();
    expect(acked.size).toBeGreaterThanOrEqual(200);
    for (const server of [entry, bystander]) {
      const misread = await misreadOf({ client: running.client(server.nodeId), expected: acked });
      expect(
        misread.slice(0, 10),
        `${misread.length} acknowledged writes misread on ${server.nodeId}`,
      ).toEqual([]);
    }
    // A 503 (NO_LEADER, NOT_LEADER) or a 502 (FORWARD_FAILED: the leader was never reached)
    // means the write was never applied; a 504 (TIMEOUT) or no answer leaves it open, so
    // those are only counted.
    const unacked = await appliedOf(
      running.client(entry.nodeId),
      records.filter((r) => r.outcome !== 'acked'),
    );
    expect(
      unacked.filter((u) => (u.status === 503 || u.status === 502) && u.applied).map((u) => u.key),
    ).toEqual([]);
    const appliedAnyway = unacked
      .filter((u) => u.applied)
      .map((u) => `${u.key} (${u.status ?? 'no answer'})`);
    process.stdout.write(
      `failover: of the writes not acknowledged, applied anyway: ${appliedAnyway.join(', ') || 'none'}\n`,
    );

    // (c) The killed server restarts from its data dir, catches up, and serves stale reads.
    await running.processes.byId(kill.victimId).start();
    const restarted = running.client(kill.victimId);
    const last = records
      .filter((r) => r.outcome === 'acked')
      .reduce<WriteRecord | null>(
        (latest, r) => (latest === null || r.endedMs > latest.endedMs ? r : latest),
        null,
      );
    if (last === null) throw new Error('no acknowledged write');
    const restartedMs = Date.now();
    await waitFor(
      async () => (await restarted.kv.get({ key: last.key, stale: true }))?.Value === last.value,
      {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: `${kill.victimId} to serve a stale read of the last acknowledged write ${last.key}`,
      },
    );
    process.stdout.write(
      `failover: ${kill.victimId} served the last write ${Date.now() - restartedMs} ms after restart\n`,
    );
    const tree = (await restarted.kv.get({ key: `{${tag}}/`, recurse: true, stale: true })) ?? [];
    const held = new Map(tree.map((e) => [e.Key, e.Value]));
    const missing = [...acked].filter(([key, value]) => held.get(key) !== value).map(([key]) => key);
    expect(missing.slice(0, 10), `${missing.length} acknowledged writes missing on ${kill.victimId}`).toEqual(
      [],
    );
  });
});

/**
 * Run the writer, SIGKILL the group's current leader once 100 writes are acknowledged, and
 * stop once 100 writes issued after the kill are acknowledged too.
 */
async function killLeaderMidStream(options: {
  cluster: ConsulCluster;
  writer: AckingWriter;
  groupId: number;
  entry: string;
}): Promise<{ victimId: string; atMs: number; inFlight: number }> {
  const { cluster, writer, groupId, entry } = options;
  const writesEach = 100;
  writer.start(4);
  try {
    await waitFor(() => writer.ackedCount >= writesEach, {
      timeoutMs: 15_000,
      intervalMs: 10,
      what: `${writesEach} acknowledged writes before the kill`,
    });
    // Leaders are balanced, so the balancer has no reason to move this one; check anyway.
    const victimId = (await cluster.balancedLeaders(5_000)).get(groupId) ?? '';
    expect(victimId, "the group's leader moved to the entry server").not.toBe(entry);
    const victim = cluster.processes.byId(victimId);
    const inFlight = writer.inFlightCount;
    const atMs = Date.now();
    expect((await victim.kill('SIGKILL')).signal).toBe('SIGKILL');
    cluster.forget(victimId);
    await waitFor(
      () => writer.records.filter((r) => r.startedMs >= atMs && r.outcome === 'acked').length >= writesEach,
      { timeoutMs: 20_000, intervalMs: 10, what: `${writesEach} acknowledged writes issued after the kill` },
    );
    return { victimId, atMs, inFlight };
  } finally {
    await writer.stop();
  }
}

/** The keys a consistent read does not find with their expected value. */
async function misreadOf(options: {
  client: ConsulClient;
  expected: ReadonlyMap<string, string>;
}): Promise<string[]> {
  const misread: string[] = [];
  await forEachLimited([...options.expected], 8, async ([key, value]) => {
    const read = await options.client.kv.get({ key, consistent: true });
    if (read?.Value !== value) misread.push(`${key}: ${String(read?.Value)}`);
  });
  return misread;
}

/** Which of these writes a consistent read finds applied. */
async function appliedOf(
  client: ConsulClient,
  records: readonly WriteRecord[],
): Promise<{ key: string; status: number | null; applied: boolean }[]> {
  const found: { key: string; status: number | null; applied: boolean }[] = [];
  await forEachLimited(records, 8, async (r) => {
    const read = await client.kv.get({ key: r.key, consistent: true });
    found.push({ key: r.key, status: r.status, applied: read?.Value === r.value });
  });
  return found;
}

/** Latency of acknowledged writes, to tell a slow server from a slow failover. */
function writeLatency(records: readonly WriteRecord[]): string {
  const ms = records
    .filter((r) => r.outcome === 'acked')
    .map((r) => r.endedMs - r.startedMs)
    .sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
  return `acknowledged write latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`;
}

/** Outcome counts, 5xx by status: e.g. "acked 812, failed 502×3 503×5, unanswered 0". */
function summarize(records: readonly WriteRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of records) {
    const name = r.outcome === 'failed' ? `failed ${r.status}` : r.outcome;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `${name}: ${count}`)
    .join(', ');
}
