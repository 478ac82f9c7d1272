import type { ProcessCluster, ServerProcess } from './processes.js';

/** What the nemesis may do to one server at a time. */
export type FaultKind = 'kill' | 'pause';

export interface NemesisOptions {
  readonly cluster: ProcessCluster;
  /** Seeds the fault schedule: the same seed picks the same servers, faults and durations. */
  readonly seed: number;
  readonly kinds: readonly FaultKind[];
  /** How long a fault lasts: a killed server stays down, a paused one frozen (ms). */
  readonly faultMsMin: number;
  readonly faultMsMax: number;
  /** The calm between two faults (ms), so that the cluster elects leaders again. */
  readonly calmMs: number;
}

/**
 * Breaks one server at a time, as an operator's worst day would: kill -9 and restart on the
 * same data dir, or SIGSTOP and SIGCONT (a long GC pause, a frozen VM). A majority stays up
 * throughout, so the cluster keeps serving and every acknowledged write must survive.
 * `stop()` heals the cluster (restarts, resumes) before it resolves. `log` says what
 * happened, for a failure's message.
 */
export class Nemesis {
  readonly log: string[] = [];
  private random: () => number;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly options: NemesisOptions) {
    if (options.kinds.length === 0) throw new Error('the nemesis needs at least one fault kind');
    if (!(options.faultMsMin > 0 && options.faultMsMax >= options.faultMsMin)) {
      throw new Error('faultMsMin must be positive and at most faultMsMax');
    }
    this.random = mulberry32(options.seed);
  }

  start(): void {
    if (this.loop !== null) throw new Error('the nemesis is already running');
    this.loop = this.run();
  }

  /** Ends the current fault early, heals every server and resolves once all are up. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { cluster, kinds, faultMsMin, faultMsMax, calmMs } = this.options;
    while (!this.stopping) {
      await this.pause(calmMs);
      if (this.stopping) break;
      const server = pick(cluster.servers, this.random);
      const kind = pick(kinds, this.random);
      const faultMs = Math.round(faultMsMin + this.random() * (faultMsMax - faultMsMin));
      await this.fault({ server, kind, faultMs });
    }
  }

  private async fault(options: { server: ServerProcess; kind: FaultKind; faultMs: number }): Promise<void> {
    const { server, kind, faultMs } = options;
    const started = Date.now();
    if (kind === 'kill') {
      await server.kill('SIGKILL');
      this.log.push(`${server.nodeId}: kill -9 for ${faultMs} ms`);
      await this.pause(faultMs);
      await server.start();
    } else {
      server.pause();
      this.log.push(`${server.nodeId}: SIGSTOP for ${faultMs} ms`);
      await this.pause(faultMs);
      server.resume();
    }
    this.log.push(`${server.nodeId}: healed after ${Date.now() - started} ms`);
  }

  /** Waits `ms`, or less when stop() is called. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function pick<T>(items: readonly T[], random: () => number): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('nothing to pick from');
  return item;
}

/** A small seeded generator: the schedule replays from its seed. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
