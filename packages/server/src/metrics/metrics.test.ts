import { createHistogram } from 'node:perf_hooks';
import type { ProgressStatus, RaftStatus } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { summarizeMetrics } from './json-summary.js';
import { Metrics } from './metrics.js';
import { followerLag, type MetricSources } from './scrape-gauges.js';

/** prom-client's JSON values carry the series name (`*_count`...), which its types omit. */
const seriesName = (value: object): string | undefined =>
  'metricName' in value && typeof value.metricName === 'string' ? value.metricName : undefined;

async function values(metrics: Metrics, name: string) {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return (await metric.get()).values;
}

function status(options: Partial<RaftStatus> & { match?: Record<string, number> }): RaftStatus {
  const progress =
    options.match === undefined
      ? null
      : new Map<string, ProgressStatus>(
          Object.entries(options.match).map(([id, match]) => [
            id,
            {
              match,
              next: match + 1,
              state: 'replicate',
              isLearner: false,
              recentActive: true,
            } as ProgressStatus,
          ]),
        );
  return {
    id: 's1',
    term: 2,
    vote: 's1',
    commit: 0,
    applied: 0,
    lastIndex: 0,
    role: 'follower',
    leaderId: null,
    confState: { voters: ['s1'], learners: [] },
    leadTransferee: null,
    electionElapsedTicks: 0,
    progress,
    ...options,
  };
}

describe('Metrics', () => {
  it('keeps each agent in its own registry: observing one leaves another at zero', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.group(3).proposalSeconds.observe(0.002);
    a.group(3).proposalSeconds.observe(0.004);
    const count = (await values(a, 'conclave_raft_proposal_seconds')).find(
      (v) => seriesName(v) === 'conclave_raft_proposal_seconds_count',
    );
    expect(count).toMatchObject({ value: 2, labels: { group: '3' } });
    expect(await values(b, 'conclave_raft_proposal_seconds')).toEqual([]);
  });

  it('refuses a group label outside the host limit, so the label set stays bounded', () => {
    const metrics = new Metrics();
    expect(() => metrics.group(1024)).toThrow(/outside/);
    expect(() => metrics.group(-1)).toThrow(/outside/);
    expect(metrics.group(1023)).toBe(metrics.group(1023));
  });

  it('counts refusals by code and WAL writes by sync', async () => {
    const metrics = new Metrics();
    metrics.proposalRefused('NOT_LEADER');
    metrics.proposalRefused('NOT_LEADER');
    metrics.proposalRefused('OVERLOADED');
    metrics.walWritten(true, 0.001);
    metrics.walWritten(false, 0.0001);
    metrics.walWritten(false, 0.0001);
    expect(await values(metrics, 'conclave_raft_proposals_refused_total')).toEqual([
      { value: 2, labels: { code: 'NOT_LEADER' } },
      { value: 1, labels: { code: 'OVERLOADED' } },
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toContain('conclave_wal_write_seconds_count{sync="true"} 1');
    expect(text).toContain('conclave_wal_write_seconds_count{sync="false"} 2');
  });

  it('reads gauges from the sources at scrape time, not before', async () => {
    const metrics = new Metrics();
    let leaderStatus = status({
      role: 'leader',
      leaderId: 's1',
      commit: 10,
      applied: 7,
      lastIndex: 12,
      match: { s1: 12, s2: 9, s3: 5 },
    });
    const lag = createHistogram();
    lag.record(2_000_000);
    lag.record(4_000_000);
    const sources: MetricSources = {
      host: {
        groupCount: 2,
        group: (g) => ({
          raw: { status: () => (g === 0 ? leaderStatus : status({ commit: 5, applied: 5, leaderId: 's2' })) },
        }),
      },
      machines: { fsm: (g) => ({ watcherCount: g + 2, sessionCount: () => (g === 0 ? 3 : 99) }) },
      lag,
      wal: { stats: () => ({ totalBytes: 4096, segmentCount: 2 }) },
    };
    const text0 = await metrics.registry.metrics();
    expect(text0).not.toContain('conclave_wal_bytes 4096');
    metrics.observeSources(sources);
    const text = await metrics.registry.metrics();
    expect(text).toContain('conclave_raft_commit_lag_entries{group="0"} 3');
    expect(text).toContain('conclave_raft_commit_lag_entries{group="1"} 0');
    expect(text).toContain('conclave_raft_follower_lag_entries{group="0"} 7');
    expect(text).not.toContain('conclave_raft_follower_lag_entries{group="1"}');
    expect(text).toContain('conclave_raft_is_leader{group="0"} 1');
    expect(text).toContain('conclave_raft_is_leader{group="1"} 0');
    expect(text).toContain('conclave_wal_bytes 4096');
    expect(text).toContain('conclave_wal_segments 2');
    expect(text).toContain('conclave_blocking_queries 5');
    expect(text).toContain('conclave_sessions 3');
    expect(text).toMatch(/conclave_event_loop_lag_seconds\{stat="max"\} 0\.004/);
    // A follower's lag disappears when this server stops leading.
    leaderStatus = status({ commit: 12, applied: 12, leaderId: 's2' });
    const later = await metrics.registry.metrics();
    expect(later).not.toContain('conclave_raft_follower_lag_entries{group="0"}');
    expect(later).toContain('conclave_raft_commit_lag_entries{group="0"} 0');
  });

  it('measures follower lag against the slowest other member, learners included', () => {
    expect(followerLag(status({ role: 'leader', lastIndex: 20, match: { s1: 20, s2: 18, s3: 11 } }))).toBe(9);
    expect(followerLag(status({ role: 'leader', lastIndex: 20, match: { s1: 20 } }))).toBeNull();
    expect(followerLag(status({ role: 'follower', lastIndex: 20 }))).toBeNull();
  });

  it('summarizes histograms per label set with count, sum and mean, Consul style', async () => {
    const metrics = new Metrics();
    metrics.httpRequest({ route: '/v1/kv/*', method: 'GET', statusCode: 200, seconds: 0.01 });
    metrics.httpRequest({ route: '/v1/kv/*', method: 'GET', statusCode: 200, seconds: 0.03 });
    metrics.httpRequest({ route: '/v1/kv/*', method: 'PUT', statusCode: 200, seconds: 0.5 });
    metrics.proposalRefused('TIMEOUT');
    const summary = await summarizeMetrics(metrics.registry, new Date(0));
    expect(summary.Timestamp).toBe('1970-01-01T00:00:00.000Z');
    const http = summary.Samples.filter((s) => s.Name === 'conclave_http_request_duration_seconds');
    expect(http).toHaveLength(2);
    const gets = http.find((s) => s.Labels.method === 'GET');
    expect(gets).toMatchObject({ Count: 2, Labels: { route: '/v1/kv/*', method: 'GET', code: '200' } });
    expect(gets?.Sum).toBeCloseTo(0.04, 9);
    expect(gets?.Mean).toBeCloseTo(0.02, 9);
    expect(summary.Counters).toEqual([
      { Name: 'conclave_raft_proposals_refused_total', Count: 1, Sum: 1, Labels: { code: 'TIMEOUT' } },
    ]);
  });
});
