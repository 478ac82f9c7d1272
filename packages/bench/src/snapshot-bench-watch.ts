/**
 * What runs beside a snapshot save to see what it costs the cluster: a light write load
 * (its latency), a probe of each server's responsiveness (its event-loop stalls, seen from
 * outside) and a poll of every follower's last contact with its leader.
 */
import { performance } from 'node:perf_hooks';
import { round } from './bench-stats.js';
import type { BenchClient } from './snapshot-bench-client.js';
import {
  type GroupContact,
  type LatencySummary,
  latencySummary,
  parseGroupContact,
} from './snapshot-bench-data.js';

/** Samples kept per series: far more than a 10-minute save at 50 per second produces. */
const samplesMax = 1_000_000;

function keep(samples: number[], value: number): void {
  if (samples.length < samplesMax) samples.push(value);
}

/**
 * Runs `body` again and again, one at a time, each start at least `intervalMs` after the
 * previous one: a stalled server delays the next probe instead of piling probes up.
 */
class Periodic {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly body: () => Promise<void>,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      await this.body();
      const restMs = this.intervalMs - (performance.now() - started);
      if (restMs > 0 && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, restMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }
}

/**
 * Round trips of `GET /v1/status/leader`, which does no I/O on the server: its latency is
 * loopback plus however long the server's event loop was busy with something else.
 */
export class LagProbe {
  static readonly intervalMs = 20;
  private readonly samples: number[][];
  private readonly errors: number[];
  private readonly loops: Periodic[];

  constructor(client: BenchClient) {
    this.samples = client.urls.map(() => []);
    this.errors = client.urls.map(() => 0);
    this.loops = client.urls.map(
      (_, server) =>
        new Periodic(LagProbe.intervalMs, async () => {
          const started = performance.now();
          try {
            await client.json({ server, path: '/v1/status/leader' });
            keep(this.samples[server] ?? [], performance.now() - started);
          } catch {
            this.errors[server] = (this.errors[server] ?? 0) + 1;
          }
        }),
    );
  }

  start(): void {
    for (const loop of this.loops) loop.start();
  }

  async stop(): Promise<(LatencySummary & { errors: number })[]> {
    await Promise.all(this.loops.map((loop) => loop.stop()));
    return this.samples.map((s, i) => ({ ...latencySummary(s), errors: this.errors[i] ?? 0 }));
  }
}

export interface HeartbeatReport {
  readonly pollIntervalMs: number;
  /** Rounds (every group of one server) completed, over all servers. */
  readonly polls: number;
  /** The rounds' mean spacing: above pollIntervalMs when the servers answer slowly. */
  readonly meanPollIntervalMs: number;
  readonly pollErrors: number;
  /** Per server: the largest lastContactMs it reported as a follower of any group. */
  readonly maxLastContactMs: Readonly<Record<string, number>>;
}

/**
 * Asks every server for its own view of every group (`/v1/operator/groups/<id>?stale`,
 * answered locally with no I/O), each server on its own schedule, so a busy server neither
 * delays the others' answers nor is asked on anyone's behalf (`/v1/operator/members` would
 * fan every poll out to every server, one group after another).
 */
export class HeartbeatPoller {
  static readonly intervalMs = 50;
  private readonly maxContactMs = new Map<string, number>();
  private polls = 0;
  private pollErrors = 0;
  private startedMs = 0;
  private readonly loops: Periodic[];

  constructor(options: { client: BenchClient; groups: number }) {
    const { client, groups } = options;
    this.loops = client.urls.map(
      (_, server) =>
        new Periodic(HeartbeatPoller.intervalMs, async () => {
          try {
            const answers = await Promise.all(
              Array.from({ length: groups }, (_, g) =>
                client.json({ server, path: `/v1/operator/groups/${g}?stale` }),
              ),
            );
            for (const c of answers.map(parseGroupContact)) this.observe(c);
            this.polls++;
          } catch {
            this.pollErrors++;
          }
        }),
    );
  }

  start(): void {
    this.startedMs = performance.now();
    for (const loop of this.loops) loop.start();
  }

  async stop(): Promise<HeartbeatReport> {
    await Promise.all(this.loops.map((loop) => loop.stop()));
    const perServerPolls = this.polls / Math.max(1, this.loops.length);
    return {
      pollIntervalMs: HeartbeatPoller.intervalMs,
      polls: this.polls,
      meanPollIntervalMs: round((performance.now() - this.startedMs) / Math.max(1, perServerPolls), 1),
      pollErrors: this.pollErrors,
      maxLastContactMs: Object.fromEntries([...this.maxContactMs].sort(([a], [b]) => a.localeCompare(b))),
    };
  }

  private observe(contact: GroupContact): void {
    if (contact.state !== 'follower') return;
    const seen = this.maxContactMs.get(contact.serverId) ?? 0;
    this.maxContactMs.set(contact.serverId, Math.max(seen, contact.lastContactMs));
  }
}

export type LoadWindow = 'before' | 'during';

/**
 * An open-loop trickle of small writes (`ratePerSecond`, round robin over the servers):
 * requests start on schedule whether or not earlier ones finished, so a stalled cluster
 * shows up as latency rather than as a slower client. Latencies are kept per window.
 */
export class WriteLoad {
  /** Beyond this many unanswered writes, the schedule skips (and counts) instead of piling up. */
  static readonly inFlightMax = 256;
  private static readonly keySpace = 1000;
  private static readonly valueBytes = 128;
  private window: LoadWindow = 'before';
  private readonly samples: Record<LoadWindow, number[]> = { before: [], during: [] };
  private readonly errors: Record<LoadWindow, number> = { before: 0, during: 0 };
  private skipped = 0;
  private inFlight = new Set<Promise<void>>();
  private sequence = 0;
  private timer: NodeJS.Timeout | null = null;
  private firstError: string | null = null;

  constructor(
    private readonly client: BenchClient,
    private readonly ratePerSecond: number,
  ) {}

  start(window: LoadWindow): void {
    this.window = window;
    this.timer = setInterval(() => this.fire(), 1000 / this.ratePerSecond);
  }

  switchTo(window: LoadWindow): void {
    this.window = window;
  }

  /** Stop starting writes and wait for those in flight. */
  async stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.inFlight);
    const summary = (w: LoadWindow) => ({ ...latencySummary(this.samples[w]), errors: this.errors[w] });
    return {
      ratePerSecond: this.ratePerSecond,
      before: summary('before'),
      during: summary('during'),
      skipped: this.skipped,
      firstError: this.firstError,
    };
  }

  private fire(): void {
    if (this.inFlight.size >= WriteLoad.inFlightMax) {
      this.skipped++;
      return;
    }
    const n = this.sequence++;
    const window = this.window;
    const started = performance.now();
    const request = this.client
      .put({
        server: n % this.client.serverCount,
        key: `snapbench-load/${n % WriteLoad.keySpace}`,
        value: Buffer.alloc(WriteLoad.valueBytes, 97 + (n % 26)),
      })
      .then(
        () => keep(this.samples[window], performance.now() - started),
        (error: unknown) => {
          this.errors[window]++;
          this.firstError ??= error instanceof Error ? error.message : String(error);
        },
      )
      .finally(() => this.inFlight.delete(request));
    this.inFlight.add(request);
  }
}
