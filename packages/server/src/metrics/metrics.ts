import { assert } from '@conclave/raft';
import { Counter, Histogram, Registry } from 'prom-client';
import { groupCountMax } from '../host/host.js';
import { type MetricSources, registerScrapeGauges } from './scrape-gauges.js';

/** Latencies of one server-side step, in seconds: 100 µs (a cached fsync) to 2.5 s. */
const stepBuckets = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
/** HTTP requests, up to blocking queries that wait the 10-minute maximum. */
const httpBuckets = [...stepBuckets, 5, 10, 30, 60, 300, 600];
/** Snapshots take from a millisecond (empty) to minutes (a large state on a slow disk). */
const snapshotSecondsBuckets = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
/** Snapshot sizes, 1 KiB to 4 GiB by powers of 4. */
const snapshotBytesBuckets = Array.from({ length: 12 }, (_, i) => 1024 * 4 ** i);
/** Requests fastify answered without a route (404): one label value, never the raw URL. */
export const unmatchedRoute = '<unmatched>';

/** One group's instruments, bound once so that the hot path looks nothing up. */
export interface GroupInstruments {
  readonly proposalSeconds: Histogram.Internal<'group'>;
  readonly applySeconds: Histogram.Internal<'group'>;
  readonly leaderChanges: Counter.Internal;
}

/**
 * The metrics of one agent, in a registry of its own (never prom-client's global one), so
 * that several agents in one process do not collide. Label values come only from bounded
 * sets: group ids (< groupCountMax), catalogue error codes, route patterns, methods and
 * status codes; never from keys or raw URLs. Gauges are read at scrape time (see
 * scrape-gauges.ts), so the hot path only observes histograms and counts.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly proposalSeconds: Histogram<'group'>;
  private readonly applySeconds: Histogram<'group'>;
  private readonly leaderChanges: Counter<'group'>;
  private readonly proposalsRefused: Counter<'code'>;
  private readonly walWriteSeconds: Histogram<'sync'>;
  private readonly snapshotSeconds: Histogram<'kind'>;
  private readonly snapshotBytes: Histogram<'kind'>;
  private readonly httpSeconds: Histogram<'route' | 'method' | 'code'>;
  private readonly groups: GroupInstruments[] = [];
  private readonly refusedByCode = new Map<string, Counter.Internal>();
  private readonly walSynced: Histogram.Internal<'sync'>;
  private readonly walUnsynced: Histogram.Internal<'sync'>;
  /** route -> method -> status code -> child: no string is built per request. */
  private readonly httpChildren = new Map<string, Map<string, Map<number, Histogram.Internal<string>>>>();
  private sources: MetricSources | null = null;

  constructor() {
    const registers = [this.registry];
    this.proposalSeconds = new Histogram({
      name: 'conclave_raft_proposal_seconds',
      help: 'From propose() on this server to the entry applying here, per group (successful proposals)',
      labelNames: ['group'],
      buckets: stepBuckets,
      registers,
    });
    this.applySeconds = new Histogram({
      name: 'conclave_raft_apply_seconds',
      help: "Time to apply one Ready's committed entries (and snapshot, if any), per group",
      labelNames: ['group'],
      buckets: stepBuckets,
      registers,
    });
    this.leaderChanges = new Counter({
      name: 'conclave_raft_leader_changes_total',
      help: 'Leaders (or leader terms) this server learned of, per group',
      labelNames: ['group'],
      registers,
    });
    this.proposalsRefused = new Counter({
      name: 'conclave_raft_proposals_refused_total',
      help: 'Proposals that failed, by error code (refused at once, replaced after a leader change, timed out)',
      labelNames: ['code'],
      registers,
    });
    this.walWriteSeconds = new Histogram({
      name: 'conclave_wal_write_seconds',
      help: "One turn's WAL write, with its fdatasync (sync=true) or without (sync=false)",
      labelNames: ['sync'],
      buckets: stepBuckets,
      registers,
    });
    this.snapshotSeconds = new Histogram({
      name: 'conclave_raft_snapshot_seconds',
      help: 'Snapshots taken (encode + save) or installed from a leader (restore)',
      labelNames: ['kind'],
      buckets: snapshotSecondsBuckets,
      registers,
    });
    this.snapshotBytes = new Histogram({
      name: 'conclave_raft_snapshot_bytes',
      help: 'Size of snapshots taken or installed',
      labelNames: ['kind'],
      buckets: snapshotBytesBuckets,
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'conclave_http_request_duration_seconds',
      help: 'HTTP requests by route pattern, method and status code',
      labelNames: ['route', 'method', 'code'],
      buckets: httpBuckets,
      registers,
    });
    this.walSynced = this.walWriteSeconds.labels('true');
    this.walUnsynced = this.walWriteSeconds.labels('false');
    registerScrapeGauges({ registry: this.registry, sources: () => this.sources });
  }

  /** Where the scrape-time gauges read from (the agent's host, machines, WAL, loop delay). */
  observeSources(sources: MetricSources): void {
    this.sources = sources;
  }

  /** One group's instruments, created on first use. */
  group(groupId: number): GroupInstruments {
    assert(
      Number.isInteger(groupId) && groupId >= 0 && groupId < groupCountMax,
      () => `group label ${groupId} is outside [0, ${groupCountMax})`,
    );
    const known = this.groups[groupId];
    if (known !== undefined) return known;
    const label = String(groupId);
    const created: GroupInstruments = {
      proposalSeconds: this.proposalSeconds.labels(label),
      applySeconds: this.applySeconds.labels(label),
      leaderChanges: this.leaderChanges.labels(label),
    };
    this.groups[groupId] = created;
    return created;
  }

  /** `code` is a catalogue code (errors.ts or the core's), so the label set stays small. */
  proposalRefused(code: string): void {
    let child = this.refusedByCode.get(code);
    if (child === undefined) {
      child = this.proposalsRefused.labels(code);
      this.refusedByCode.set(code, child);
    }
    child.inc();
  }

  walWritten(sync: boolean, seconds: number): void {
    (sync ? this.walSynced : this.walUnsynced).observe(seconds);
  }

  snapshot(options: { kind: 'taken' | 'installed'; bytes: number; seconds: number }): void {
    this.snapshotSeconds.labels(options.kind).observe(options.seconds);
    this.snapshotBytes.labels(options.kind).observe(options.bytes);
  }

  /** `route` is the route's pattern (or unmatchedRoute), never the request's URL. */
  httpRequest(options: { route: string; method: string; statusCode: number; seconds: number }): void {
    let byMethod = this.httpChildren.get(options.route);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.httpChildren.set(options.route, byMethod);
    }
    let byCode = byMethod.get(options.method);
    if (byCode === undefined) {
      byCode = new Map();
      byMethod.set(options.method, byCode);
    }
    let child = byCode.get(options.statusCode);
    if (child === undefined) {
      child = this.httpSeconds.labels(options.route, options.method, String(options.statusCode));
      byCode.set(options.statusCode, child);
    }
    child.observe(options.seconds);
  }
}
