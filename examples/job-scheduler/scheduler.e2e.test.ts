/**
 * The job scheduler example end to end: a 3-server cluster (the built agents), three worker
 * processes (the example's build, examples/job-scheduler/dist/worker.js), jobs submitted
 * through the SDK. Every job completes exactly once, judged by the run records; the
 * leader's process is killed (SIGKILL, so its session lingers until its TTL runs out), a
 * new leader takes over and the next jobs complete exactly once too. Needs `npm run build`
 * (`npm test` builds first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Conclave, connect } from '@conclave/client';
import { assertBuilt, ProcessCluster, pollUntil } from '@conclave/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compute,
  fencedUpdate,
  type JobResult,
  names,
  readState,
  type SchedulerState,
  StaleFenceError,
  submitJobs,
} from './src/scheduler.js';

const workerJs = fileURLToPath(new URL('./dist/worker.js', import.meta.url));
const ns = 'e2e-scheduler';

interface WorkerProcess {
  readonly id: string;
  readonly child: ChildProcess;
  output: string;
  readonly exited: Promise<void>;
}

let cluster: ProcessCluster | undefined;
let cv: Conclave | undefined;
const workers: WorkerProcess[] = [];

function startWorker(id: string, servers: readonly string[]): WorkerProcess {
  const child = spawn(
    process.execPath,
    [workerJs, '--servers', servers.join(','), '--id', id, '--ns', ns, '--poll-ms', '100', '--work-ms', '50'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const worker: WorkerProcess = {
    id,
    child,
    output: '',
    exited: new Promise((resolve) => child.once('close', () => resolve())),
  };
  const keep = (chunk: string) => {
    worker.output = (worker.output + chunk).slice(-64 * 1024);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  workers.push(worker);
  return worker;
}

const running = (w: WorkerProcess) => w.child.exitCode === null && w.child.signalCode === null;

/** Each job done exactly once: one completed run, the one its result and its state name. */
function expectExactlyOnce(state: SchedulerState, jobIds: readonly string[]): void {
  for (const jobId of jobIds) {
    const job = state.jobs.get(jobId);
    expect(job?.state, jobId).toBe('done');
    const completed = state.runs.filter((r) => r.jobId === jobId && r.state === 'completed');
    expect(completed.length, `completed runs of ${jobId}`).toBe(1);
    const [run] = completed;
    const result = state.results.get(jobId);
    expect(result?.state, jobId).toBe('done');
    expect(result?.runId, jobId).toBe(run?.runId);
    expect(job?.runId, jobId).toBe(run?.runId);
    expect(result?.output, jobId).toBe(compute(job?.input ?? Number.NaN));
    expect(run?.output, jobId).toBe(result?.output);
    expect(result?.fence, jobId).toBe(run?.fence);
  }
  // Run ids come from one counter: never two runs with one id.
  const ids = state.runs.map((r) => r.runId);
  expect(new Set(ids).size).toBe(ids.length);
}

const jobsOf = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i + 1}`, input: i + 1 }));

async function allDone(jobIds: readonly string[]): Promise<SchedulerState | undefined> {
  if (cv === undefined) throw new Error('no connection');
  const state = await readState(cv, ns);
  return jobIds.every((id) => state.jobs.get(id)?.state === 'done') ? state : undefined;
}

beforeAll(async () => {
  assertBuilt();
  if (!existsSync(workerJs)) throw new Error(`${workerJs} is missing: run \`npm run build\` first`);
  // The agent's default tick (50 ms): with shorter ticks a busy machine moves leaderships,
  // and each new leader of group 0 restarts every session's TTL, delaying the killed
  // worker's expiry past the test's bounds.
  const started = await ProcessCluster.create({ size: 3, groups: 4, tickMs: 50 });
  cluster = started;
  await started.startAll();
  await pollUntil(() => started.agreedLeaders(), {
    intervalMs: 50,
    timeoutMs: 20_000,
    what: 'a leader for every group',
  });
  cv = connect({ servers: started.servers.map((s) => s.url) });
}, 30_000);

afterAll(async () => {
  try {
    for (const w of workers.filter(running)) w.child.kill('SIGTERM');
    await Promise.race([
      Promise.all(workers.map((w) => w.exited)),
      new Promise((resolve) => setTimeout(resolve, 5000)),
    ]);
    for (const w of workers.filter(running)) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await cv?.close().catch(() => undefined);
  } finally {
    await cluster?.destroy();
  }
}, 20_000);

describe('examples/job-scheduler', () => {
  it('refuses a write under the fence of a lock that has passed on', async () => {
    if (cluster === undefined || cv === undefined) throw new Error('no cluster');
    const other = connect({ servers: cluster.servers.map((s) => s.url) });
    try {
      const results = cv.map<JobResult>(`${ns}-fence/results`);
      const entry = (fence: number, worker: string): JobResult => ({
        jobId: 'j',
        fence,
        state: 'done',
        runId: fence,
        worker,
        output: 1,
      });
      const first = await cv.lock(`${ns}-fence/lock`).acquire();
      const stale = first.fence;
      expect((await fencedUpdate(results, 'j', stale, () => entry(stale, 'first'))).written).toBe(true);
      await first.release();
      // The lock passes on: the next holder's fence is higher, and its write wins.
      const second = await other.lock(`${ns}-fence/lock`).acquire();
      expect(second.fence).toBeGreaterThan(stale);
      await fencedUpdate(results, 'j', second.fence, () => entry(second.fence, 'second'));
      // A late write under the first holder's fence (a holder paused past its hold) is refused.
      await expect(fencedUpdate(results, 'j', stale, () => entry(stale, 'first'))).rejects.toBeInstanceOf(
        StaleFenceError,
      );
      expect((await results.get('j'))?.value.worker).toBe('second');
      await second.release();
    } finally {
      await other.close();
    }
  });

  // About 30 s on a quiet machine, most of it the killed leader's session running out (10 s
  // TTL, expired 2 x TTL after its last renewal); the bound leaves room for a busy one.
  it('runs every job exactly once, and goes on under a new leader when the leader is killed', {
    timeout: 60_000,
  }, async (context) => {
    context.onTestFailed(() => {
      for (const w of workers) process.stderr.write(`---- worker ${w.id} ----\n${w.output.slice(-4000)}\n`);
    });
    if (cluster === undefined || cv === undefined) throw new Error('no cluster');
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (what: string) => phases.push(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    context.onTestFailed(() => {
      process.stderr.write(`phases: ${phases.join(', ')}\n`);
    });
    const urls = cluster.servers.map((s) => s.url);
    // Each worker starts at a different server (it fails over to the others).
    for (const [i, id] of ['w1', 'w2', 'w3'].entries()) {
      startWorker(id, [...urls.slice(i), ...urls.slice(0, i)]);
    }
    const n = names(ns);
    const election = cv.election(n.election);
    const first = await pollUntil(
      async () => {
        const live: string[] = [];
        for await (const w of cv?.set(n.workers).elements() ?? []) live.push(w);
        const term = await election.term();
        return live.length === 3 && term.leader !== null ? term : undefined;
      },
      { intervalMs: 100, timeoutMs: 15_000, what: 'three live workers and a leader' },
    );

    phase('workers up');
    const batch1 = jobsOf('a', 9);
    await submitJobs(cv, ns, batch1);
    const afterFirst = await pollUntil(() => allDone(batch1.map((j) => j.id)), {
      intervalMs: 200,
      timeoutMs: 15_000,
      what: 'the first 9 jobs to be done',
    });
    phase('first jobs done');
    expectExactlyOnce(
      afterFirst,
      batch1.map((j) => j.id),
    );
    // Spread over the workers by the leader, not all run by one.
    expect(new Set([...afterFirst.results.values()].map((r) => r.worker)).size).toBeGreaterThan(1);

    // Kill the leader's process: no goodbye, its session lingers until the server expires it.
    const leader = workers.find((w) => w.id === first.leader);
    if (leader === undefined) throw new Error(`no worker ${first.leader}`);
    leader.child.kill('SIGKILL');
    await leader.exited;
    phase(`leader ${leader.id} killed`);
    const batch2 = jobsOf('b', 6);
    await submitJobs(cv, ns, batch2);

    const second = await pollUntil(
      async () => {
        const term = await election.term();
        return term.leader !== null && term.leader !== leader.id && term.term > first.term ? term : undefined;
      },
      { intervalMs: 200, timeoutMs: 35_000, what: 'a new leader' },
    );
    phase(`${second.leader} leads`);
    expect(['w1', 'w2', 'w3'].filter((id) => id !== leader.id)).toContain(second.leader);

    const all = [...batch1, ...batch2].map((j) => j.id);
    const final = await pollUntil(() => allDone(all), {
      intervalMs: 200,
      timeoutMs: 10_000,
      what: 'all 15 jobs to be done',
    });
    phase('all jobs done');
    expectExactlyOnce(final, all);
    for (const { id } of batch2) {
      // Assigned by the new leader, run by a live worker.
      expect(final.jobs.get(id)?.assignedInTerm, id).toBeGreaterThanOrEqual(second.term);
      expect(final.results.get(id)?.worker, id).not.toBe(leader.id);
    }
    // The survivors are still running; the killed worker left the set of live workers.
    expect(workers.filter(running).map((w) => w.id)).toHaveLength(2);
    const live: string[] = [];
    for await (const w of cv.set(n.workers).elements()) live.push(w);
    expect(live.sort()).toEqual(['w1', 'w2', 'w3'].filter((id) => id !== leader.id));
  });
});
