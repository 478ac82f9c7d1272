import { describe, expect, it } from 'vitest';
import { singleServerPerTest } from '../agent/testing/single-server.js';
import type { MetricsSummary } from './json-summary.js';

const groupCount = 4;

const setup = singleServerPerTest({ groupCount });

/** The value of one series in the text exposition format, or null when absent. */
function seriesValue(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

const kvPutCount = 'conclave_http_request_duration_seconds_count{route="/v1/kv/*",method="PUT",code="200"}';

describe('GET /v1/agent/metrics', () => {
  it('serves the Prometheus text format with every metric family named in docs/observability.md', async () => {
    const { app } = await setup();
    const response = await app.inject({ method: 'GET', url: '/v1/agent/metrics?format=prometheus' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      'conclave_raft_proposal_seconds',
      'conclave_raft_apply_seconds',
      'conclave_raft_leader_changes_total',
      'conclave_raft_proposals_refused_total',
      'conclave_wal_write_seconds',
      'conclave_raft_snapshot_seconds',
      'conclave_raft_snapshot_bytes',
      'conclave_http_request_duration_seconds',
      'conclave_raft_commit_lag_entries',
      'conclave_raft_follower_lag_entries',
      'conclave_raft_is_leader',
      'conclave_wal_bytes',
      'conclave_blocking_queries',
      'conclave_sessions',
      'conclave_event_loop_lag_seconds',
    ]) {
      expect(response.body).toContain(`# TYPE ${name} `);
    }
    // Every group elected this server when the host started.
    for (let g = 0; g < groupCount; g++) {
      expect(seriesValue(response.body, `conclave_raft_is_leader{group="${g}"}`)).toBe(1);
      expect(seriesValue(response.body, `conclave_raft_leader_changes_total{group="${g}"}`)).toBe(1);
    }
  });

  it('counts a PUT in the HTTP histogram under its route pattern, never its key, and its proposal', async () => {
    const { app } = await setup();
    const scrape = async () =>
      (await app.inject({ method: 'GET', url: '/v1/agent/metrics?format=prometheus' })).body;
    const before = await scrape();
    expect(seriesValue(before, kvPutCount)).toBeNull();
    const put = await app.inject({ method: 'PUT', url: '/v1/kv/secret-key-name', payload: 'v' });
    expect(put.statusCode).toBe(200);
    const after = await scrape();
    expect(seriesValue(after, kvPutCount)).toBe(1);
    expect(after).not.toContain('secret-key-name');
    const proposals = [...Array(groupCount).keys()].reduce(
      (sum, g) => sum + (seriesValue(after, `conclave_raft_proposal_seconds_count{group="${g}"}`) ?? 0),
      0,
    );
    expect(proposals).toBe(1);
    expect(seriesValue(after, 'conclave_wal_write_seconds_count{sync="true"}')).toBeGreaterThan(0);
    // The first scrape itself was timed under the metrics route.
    expect(
      seriesValue(
        after,
        'conclave_http_request_duration_seconds_count{route="/v1/agent/metrics",method="GET",code="200"}',
      ),
    ).toBe(1);
  });

  it('times an unknown URL under one unmatched route label', async () => {
    const { app } = await setup();
    expect((await app.inject({ method: 'GET', url: '/no/such/path/abc' })).statusCode).toBe(404);
    const text = (await app.inject({ method: 'GET', url: '/v1/agent/metrics?format=prometheus' })).body;
    expect(
      seriesValue(
        text,
        'conclave_http_request_duration_seconds_count{route="<unmatched>",method="GET",code="404"}',
      ),
    ).toBe(1);
    expect(text).not.toContain('abc');
  });

  it('answers without format=prometheus with a Consul-shaped JSON summary', async () => {
    const { app } = await setup();
    await app.inject({ method: 'PUT', url: '/v1/session/create', payload: { TTL: '15s' } });
    const response = await app.inject({ method: 'GET', url: '/v1/agent/metrics' });
    expect(response.statusCode).toBe(200);
    const summary = response.json<MetricsSummary>();
    expect(Date.parse(summary.Timestamp)).not.toBeNaN();
    expect(summary.Gauges).toContainEqual({ Name: 'conclave_sessions', Value: 1, Labels: {} });
    expect(summary.Counters).toContainEqual({
      Name: 'conclave_raft_leader_changes_total',
      Count: 1,
      Sum: 1,
      Labels: { group: '0' },
    });
    const sessionCreate = summary.Samples.find(
      (s) => s.Name === 'conclave_http_request_duration_seconds' && s.Labels.route === '/v1/session/create',
    );
    expect(sessionCreate).toMatchObject({ Count: 1, Labels: { method: 'PUT', code: '200' } });
    expect(sessionCreate?.Mean).toBeCloseTo((sessionCreate?.Sum ?? 0) / 1, 9);
  });
});
