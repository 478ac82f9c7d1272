/**
 * A small job scheduler on Conclave's coordination primitives (see README.md):
 *
 * - every worker process stands in one **LeaderElection**; the leader assigns jobs;
 * - each worker announces itself in a **Set** of live workers, as an ephemeral element that
 *   goes when its session ends (that is how the leader learns a worker died);
 * - the jobs live in a **Map** (job id -> state); every change is a conditional write
 *   (`ifVersion`), so no writer overwrites a change it did not see;
 * - each run of a job holds the job's **Lock**, and the job's side effect (its entry in the
 *   results Map) is written only under the lock's **fence**: a write carrying a fence below
 *   the one stored is refused, so a worker that lost the lock (paused, cut off) can no
 *   longer touch the result;
 * - a **Counter** numbers the runs; each run leaves a record in the runs Map.
 */
import { type Conclave, ConclaveClientError, type ConclaveMap, type Versioned } from '@conclave/client';

/** The primitives' names, all under one namespace so several schedulers can share a cluster. */
export function names(ns: string) {
  return {
    jobs: `${ns}/jobs`,
    runs: `${ns}/runs`,
    results: `${ns}/results`,
    runIds: `${ns}/run-ids`,
    workers: `${ns}/workers`,
    election: `${ns}/scheduler`,
    lock: (jobId: string) => `${ns}/job/${jobId}`,
  };
}

export interface Job {
  readonly id: string;
  readonly input: number;
  readonly state: 'pending' | 'assigned' | 'done';
  /** The worker it is assigned to (null while pending). */
  readonly worker: string | null;
  /** The election term of the leader that assigned it last: a newer leader's write wins. */
  readonly assignedInTerm: number;
  /** The run that did it, once done. */
  readonly runId: number | null;
}

/** One attempt at a job: `started` when it began, `completed` once its side effect landed. */
export interface RunRecord {
  readonly runId: number;
  readonly jobId: string;
  readonly worker: string;
  readonly fence: number;
  readonly state: 'started' | 'completed';
  readonly output: number | null;
  /** Set when another worker completed the record of a run whose worker died after its side effect. */
  readonly completedBy?: string;
}

/** The job's side effect: its result, guarded by the fence of the lock it was written under. */
export interface JobResult {
  readonly jobId: string;
  /** The highest fence that ever wrote this entry: lower ones are refused. */
  readonly fence: number;
  /** `claimed` while a run works on it; `done` once the run wrote its output. */
  readonly state: 'claimed' | 'done';
  readonly runId: number | null;
  readonly worker: string;
  readonly output: number | null;
}

/** What a job computes (the "work"). */
export function compute(input: number): number {
  return input * input + 1;
}

export const runKey = (runId: number) => `run-${String(runId).padStart(8, '0')}`;

/** A write refused because the entry already carries a higher fence. */
export class StaleFenceError extends Error {
  constructor(
    readonly key: string,
    readonly fence: number,
    readonly stored: number,
  ) {
    super(`fence ${fence} is stale for ${key}: it already carries fence ${stored}`);
  }
}

function isVersionMismatch(error: unknown): boolean {
  return error instanceof ConclaveClientError && error.code === 'VERSION_MISMATCH';
}

/**
 * Read, check, write under a fence. `decide` sees the entry as it is now (after the fence
 * check) and returns what to write, or undefined to write nothing. The put is conditional
 * on the version that was read (`ifVersion`, 0 for absent), so the fence check and the write
 * are one step: if anyone wrote in between, it reads again. Throws StaleFenceError when the
 * entry carries a fence above `fence`.
 */
export async function fencedUpdate<V extends { readonly fence: number }>(
  map: ConclaveMap<V>,
  key: string,
  fence: number,
  decide: (current: V | null) => V | undefined,
): Promise<{ written: boolean; current: V | null }> {
  for (;;) {
    const current = await map.get(key, { consistency: 'consistent' });
    if (current !== null && current.value.fence > fence) {
      throw new StaleFenceError(key, fence, current.value.fence);
    }
    const next = decide(current?.value ?? null);
    if (next === undefined) return { written: false, current: current?.value ?? null };
    try {
      await map.put(key, next, { ifVersion: current?.version ?? 0 });
      return { written: true, current: next };
    } catch (error) {
      if (!isVersionMismatch(error)) throw error;
    }
  }
}

/** Sets an entry to `change(current)` with `ifVersion`, again on every conflict; undefined: leave it. */
async function casUpdate<V>(
  map: ConclaveMap<V>,
  key: string,
  change: (current: Versioned<V>) => V | undefined,
): Promise<void> {
  for (;;) {
    const current = await map.get(key, { consistency: 'consistent' });
    if (current === null) throw new Error(`${map.name}: ${key} is missing`);
    const next = change(current);
    if (next === undefined) return;
    try {
      await map.put(key, next, { ifVersion: current.version });
      return;
    } catch (error) {
      if (!isVersionMismatch(error)) throw error;
    }
  }
}

/** Adds jobs as pending (a job id already there is left as it is). */
export async function submitJobs(
  cv: Conclave,
  ns: string,
  jobs: readonly { readonly id: string; readonly input: number }[],
): Promise<void> {
  const map = cv.map<Job>(names(ns).jobs);
  for (const { id, input } of jobs) {
    await map.insert(id, { id, input, state: 'pending', worker: null, assignedInTerm: 0, runId: null });
  }
}

export interface SchedulerState {
  readonly jobs: ReadonlyMap<string, Job>;
  readonly runs: readonly RunRecord[];
  readonly results: ReadonlyMap<string, JobResult>;
}

/** Every job, run record and result, read page by page. */
export async function readState(cv: Conclave, ns: string): Promise<SchedulerState> {
  const n = names(ns);
  const jobs = new Map<string, Job>();
  for await (const entry of cv.map<Job>(n.jobs).entries()) jobs.set(entry.key, entry.value);
  const runs: RunRecord[] = [];
  for await (const entry of cv.map<RunRecord>(n.runs).entries()) runs.push(entry.value);
  runs.sort((a, b) => a.runId - b.runId);
  const results = new Map<string, JobResult>();
  for await (const entry of cv.map<JobResult>(n.results).entries()) results.set(entry.key, entry.value);
  return { jobs, runs, results };
}

export interface WorkerOptions {
  /** This worker's id: its candidate id and its name in the set of live workers. */
  readonly id: string;
  readonly ns: string;
  /** How often the leader looks for jobs to assign, and a worker for jobs to run, ms. */
  readonly pollMs: number;
  /** How long one job's work takes, ms. */
  readonly workMs: number;
  /** One event as a JSON-ready object (the CLI prints them as lines). */
  readonly log: (event: Record<string, unknown>) => void;
}

/**
 * One scheduler worker: a candidate for leader and an executor of the jobs assigned to it.
 * `start()` joins; `stop()` leaves and closes nothing (the caller closes the connection,
 * which releases the session's locks, candidacy and set element at once).
 */
export class SchedulerWorker {
  private readonly n: ReturnType<typeof names>;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private fail: (error: unknown) => void = () => undefined;
  /** Rejects with the first failure of any loop, or with the loss of the candidacy. */
  private readonly failure = new Promise<never>((_, reject) => {
    this.fail = reject;
  });
  /** The term this worker leads in, or null. */
  private leading: { term: number; stop: AbortController } | null = null;

  constructor(
    private readonly cv: Conclave,
    private readonly options: WorkerOptions,
  ) {
    this.n = names(options.ns);
    // Nobody need be waiting on failed(): the rejection is still seen by whoever asks.
    this.failure.catch(() => undefined);
  }

  async start(): Promise<void> {
    const { id } = this.options;
    await this.cv.set(this.n.workers).add(id, { ephemeral: true });
    const candidacy = await this.cv.election(this.n.election).enter(id);
    // The session ended (its locks, candidacy and set element are gone): this worker is done.
    candidacy.on('lost', (error) => this.fail(error));
    this.options.log({ event: 'joined' });
    this.loops = [this.followElection(), this.executeLoop()].map((loop) =>
      loop.catch((error: unknown) => this.fail(error)),
    );
  }

  /** Stops the loops and waits for them (a job being run finishes first). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.leading?.stop.abort();
    await Promise.allSettled(this.loops);
  }

  /** Rejects when a loop fails or the session (with the candidacy) is lost: the worker should exit. */
  failed(): Promise<never> {
    return this.failure;
  }

  /** Leads while the election says this worker leads; a new term starts a new leader loop. */
  private async followElection(): Promise<void> {
    let leaderLoop: Promise<void> = Promise.resolve();
    for await (const term of this.cv.election(this.n.election).watch({ signal: this.stopping.signal })) {
      const mine = term.leader === this.options.id;
      if (mine && this.leading?.term !== term.term) {
        this.leading?.stop.abort();
        await leaderLoop;
        const leading = { term: term.term, stop: new AbortController() };
        this.leading = leading;
        this.options.log({ event: 'leading', term: term.term });
        leaderLoop = this.leadLoop(leading.term, leading.stop.signal).catch((error: unknown) =>
          this.fail(error),
        );
      } else if (!mine && this.leading !== null) {
        this.options.log({ event: 'not-leading', term: term.term, leader: term.leader });
        this.leading.stop.abort();
        this.leading = null;
        await leaderLoop;
      }
    }
    await leaderLoop;
  }

  /**
   * The leader's work, every pollMs: assign each pending job, and each job assigned to a
   * worker no longer live, to the live worker with the fewest jobs. Each assignment is a
   * write conditional on the version read, carrying this leader's term; a job assigned in
   * a later term tells this worker it is no longer the leader.
   */
  private async leadLoop(term: number, signal: AbortSignal): Promise<void> {
    const jobs = this.cv.map<Job>(this.n.jobs);
    while (!signal.aborted) {
      const live: string[] = [];
      for await (const worker of this.cv.set(this.n.workers).elements()) live.push(worker);
      const load = new Map(live.map((w) => [w, 0]));
      const toAssign: Versioned<Job>[] = [];
      for await (const entry of jobs.entries()) {
        const job = entry.value;
        if (job.assignedInTerm > term) {
          this.options.log({ event: 'stale-leader', term, newer: job.assignedInTerm });
          return;
        }
        if (job.state === 'assigned' && job.worker !== null && load.has(job.worker)) {
          load.set(job.worker, (load.get(job.worker) ?? 0) + 1);
        } else if (job.state !== 'done') toAssign.push(entry);
      }
      for (const entry of toAssign) {
        if (signal.aborted) return;
        const target = [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]?.[0];
        if (target === undefined) break;
        try {
          await jobs.put(
            entry.value.id,
            { ...entry.value, state: 'assigned', worker: target, assignedInTerm: term },
            { ifVersion: entry.version },
          );
          load.set(target, (load.get(target) ?? 0) + 1);
          this.options.log({ event: 'assigned', job: entry.value.id, to: target, term });
        } catch (error) {
          // Changed since it was read (done, or assigned by someone else): the next pass sees it.
          if (!isVersionMismatch(error)) throw error;
        }
      }
      await sleep(this.options.pollMs, signal);
    }
  }

  /** Every pollMs: run, one at a time, each job assigned to this worker. */
  private async executeLoop(): Promise<void> {
    const jobs = this.cv.map<Job>(this.n.jobs);
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const mine: string[] = [];
      for await (const entry of jobs.entries()) {
        if (entry.value.state === 'assigned' && entry.value.worker === this.options.id) mine.push(entry.key);
      }
      for (const jobId of mine) {
        if (signal.aborted) return;
        await this.runJob(jobId);
      }
      await sleep(this.options.pollMs, signal);
    }
  }

  /**
   * One run of a job, under its lock:
   * 1. claim the result entry with the lock's fence (refused if a higher fence holds it;
   *    if an earlier run already finished the side effect, adopt that run instead);
   * 2. take a run id from the counter and record the run as started;
   * 3. work (abandoned if the lock is lost meanwhile);
   * 4. write the output to the result entry under the fence (refused if the lock was lost
   *    and a later holder claimed it), then record the run as completed and the job done.
   */
  private async runJob(jobId: string): Promise<void> {
    const { id, log } = this.options;
    const lock = await this.cv.lock(this.n.lock(jobId)).acquire({ timeoutMs: 5000 });
    if (lock === null) return; // another worker runs it: the next pass looks again
    const fence = lock.fence;
    try {
      const jobs = this.cv.map<Job>(this.n.jobs);
      const job = await jobs.get(jobId, { consistency: 'consistent' });
      if (job === null || job.value.state === 'done' || job.value.worker !== id) return;
      const results = this.cv.map<JobResult>(this.n.results);
      const runs = this.cv.map<RunRecord>(this.n.runs);

      const claim = await fencedUpdate(results, jobId, fence, (current): JobResult | undefined =>
        current?.state === 'done'
          ? undefined
          : { jobId, fence, state: 'claimed', runId: null, worker: id, output: null },
      );
      if (!claim.written) {
        // An earlier holder wrote the side effect and died before finishing: finish for it.
        const done = claim.current;
        if (done?.runId == null) throw new Error(`result of ${jobId} is done without a run`);
        await casUpdate(runs, runKey(done.runId), (run): RunRecord | undefined =>
          run.value.state === 'completed'
            ? undefined
            : { ...run.value, state: 'completed', output: done.output, completedBy: id },
        );
        await this.markDone(jobId, done.runId);
        log({ event: 'adopted', job: jobId, runId: done.runId, fence });
        return;
      }

      const runId = await this.cv.counter(this.n.runIds).increment();
      const started: RunRecord = { runId, jobId, worker: id, fence, state: 'started', output: null };
      await runs.put(runKey(runId), started);
      log({ event: 'run-started', job: jobId, runId, fence });

      await sleep(this.options.workMs, lock.signal);
      if (!lock.held) throw new Error(`lost the lock of ${jobId} while working`);
      const output = compute(job.value.input);

      await fencedUpdate(
        results,
        jobId,
        fence,
        (): JobResult => ({
          jobId,
          fence,
          state: 'done',
          runId,
          worker: id,
          output,
        }),
      );
      await runs.put(runKey(runId), { ...started, state: 'completed', output });
      await this.markDone(jobId, runId);
      log({ event: 'run-completed', job: jobId, runId, fence, output });
    } catch (error) {
      // A stale fence or a lost lock: this run stops; whoever holds the lock now finishes the job.
      if (error instanceof StaleFenceError || !lock.held) {
        log({ event: 'run-abandoned', job: jobId, fence, reason: (error as Error).message });
        return;
      }
      throw error;
    } finally {
      if (lock.held) await lock.release().catch(() => undefined);
    }
  }

  private async markDone(jobId: string, runId: number): Promise<void> {
    await casUpdate(this.cv.map<Job>(this.n.jobs), jobId, (job): Job | undefined =>
      job.value.state === 'done' ? undefined : { ...job.value, state: 'done', runId },
    );
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
