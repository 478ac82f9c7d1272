import type { IntervalHistogram } from 'node:perf_hooks';
import type { RaftStatus } from '@conclave/raft';
import { Gauge, type Registry } from 'prom-client';

/**
 * What the gauges read at scrape time. Structural, so tests can hand in a bare host; the
 * agent passes its MultiRaftHost, GroupMachines, WAL and event-loop delay histogram.
 */
export interface MetricSources {
  readonly host: {
    readonly groupCount: number;
    group(groupId: number): { readonly raw: { status(): RaftStatus } };
  };
  readonly machines: { fsm(groupId: number): { readonly watcherCount: number; sessionCount(): number } };
  /** Event-loop delay in nanoseconds, as a perf_hooks histogram reports it. */
  readonly lag: Pick<IntervalHistogram, 'percentile' | 'max'>;
  /** Absent where there is no WAL (the in-memory log of tests): its gauges stay unset. */
  readonly wal?: { stats(): { readonly totalBytes: number; readonly segmentCount: number } };
}

/** Sessions are replicated in every group; group 0 is their authority (see api.md). */
const sessionAuthorityGroup = 0;

/**
 * Gauges computed when scraped (prom-client's collect()), so the hot path pays nothing for
 * them. Each scrape reads every group's status once per gauge family: O(groups), with
 * groups bounded by groupCountMax.
 */
export function registerScrapeGauges(options: {
  registry: Registry;
  sources: () => MetricSources | null;
}): void {
  const registers = [options.registry];
  const read = options.sources;
  new Gauge({
    name: 'conclave_raft_commit_lag_entries',
    help: 'Committed entries not yet applied on this server (commit - applied), per group',
    labelNames: ['group'],
    registers,
    collect() {
      this.reset();
      const sources = read();
      if (sources === null) return;
      eachStatus(sources, (groupId, status) =>
        this.labels(String(groupId)).set(status.commit - status.applied),
      );
    },
  });
  new Gauge({
    name: 'conclave_raft_follower_lag_entries',
    help: "On a group's leader: its last index minus the lowest match index of the other members",
    labelNames: ['group'],
    registers,
    collect() {
      this.reset();
      const sources = read();
      if (sources === null) return;
      eachStatus(sources, (groupId, status) => {
        const trailing = followerLag(status);
        if (trailing !== null) this.labels(String(groupId)).set(trailing);
      });
    },
  });
  new Gauge({
    name: 'conclave_raft_is_leader',
    help: '1 where this server leads the group, else 0',
    labelNames: ['group'],
    registers,
    collect() {
      this.reset();
      const sources = read();
      if (sources === null) return;
      eachStatus(sources, (groupId, status) =>
        this.labels(String(groupId)).set(status.role === 'leader' ? 1 : 0),
      );
    },
  });
  registerServerGauges({ registers, read });
}

function registerServerGauges(options: { registers: Registry[]; read: () => MetricSources | null }): void {
  const { registers, read } = options;
  new Gauge({
    name: 'conclave_wal_bytes',
    help: 'Size of the live WAL segments on disk',
    registers,
    collect() {
      const stats = read()?.wal?.stats();
      if (stats !== undefined) this.set(stats.totalBytes);
    },
  });
  new Gauge({
    name: 'conclave_wal_segments',
    help: 'Live WAL segment files',
    registers,
    collect() {
      const stats = read()?.wal?.stats();
      if (stats !== undefined) this.set(stats.segmentCount);
    },
  });
  new Gauge({
    name: 'conclave_blocking_queries',
    help: 'Blocking queries waiting on this server (watches on every group state machine)',
    registers,
    collect() {
      const sources = read();
      if (sources === null) return;
      let watchers = 0;
      for (let g = 0; g < sources.host.groupCount; g++) watchers += sources.machines.fsm(g).watcherCount;
      this.set(watchers);
    },
  });
  new Gauge({
    name: 'conclave_sessions',
    help: "Sessions in this server's copy of the session authority group (group 0)",
    registers,
    collect() {
      const sources = read();
      if (sources !== null) this.set(sources.machines.fsm(sessionAuthorityGroup).sessionCount());
    },
  });
  new Gauge({
    name: 'conclave_event_loop_lag_seconds',
    help: 'Event-loop delay since the agent started: p50, p99 and max',
    labelNames: ['stat'],
    registers,
    collect() {
      const lag = read()?.lag;
      if (lag === undefined) return;
      this.labels('p50').set(lag.percentile(50) / 1e9);
      this.labels('p99').set(lag.percentile(99) / 1e9);
      this.labels('max').set(lag.max / 1e9);
    },
  });
}

function eachStatus(sources: MetricSources, visit: (groupId: number, status: RaftStatus) => void): void {
  for (let g = 0; g < sources.host.groupCount; g++) visit(g, sources.host.group(g).raw.status());
}

/** How far the slowest other member trails the leader; null off the leader or when alone. */
export function followerLag(status: RaftStatus): number | null {
  if (status.role !== 'leader' || status.progress === null) return null;
  let minMatch: number | null = null;
  for (const [id, progress] of status.progress) {
    if (id === status.id) continue;
    minMatch = minMatch === null ? progress.match : Math.min(minMatch, progress.match);
  }
  return minMatch === null ? null : status.lastIndex - minMatch;
}
