import { createPrng, type Prng } from '@conclave/raft';
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
  private readonly random: Prng;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly options: NemesisOptions) {
    if (options.kinds.length === 0) throw new Error('the nemesis needs at least one fault kind');
    if (!(options.faultMsMin > 0 && options.faultMsMax >= options.faultMsMin)) {
      throw new Error('faultMsMin must be positive and at most faultMsMax');
    }
    this.random = createPrng(options.seed);
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
      const faultMs = faultMsMin + this.random.nextInt(faultMsMax - faultMsMin + 1);
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

function pick<T>(items: readonly T[], random: Prng): T {
  const item = items[random.nextInt(items.length)];
  if (item === undefined) throw new Error('nothing to pick from');
  return item;
}
