/**
 * Submits jobs, then waits until they are done and prints each one's run:
 *
 *   node examples/job-scheduler/dist/submit.js --servers 127.0.0.1:8501 --count 10 [--ns job-scheduler] \
 *     [--prefix job] [--timeout-ms 60000]
 *
 * Job i (from 1) gets the id `<prefix>-<i>` and the input i.
 */
import { connect } from '@conclave/client';
import { compute, readState, submitJobs } from './scheduler.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const at = argv.indexOf(name);
  return at >= 0 ? (argv[at + 1] ?? fallback) : fallback;
};
const servers = flag('--servers', '')
  .split(',')
  .filter((s) => s.length > 0);
const ns = flag('--ns', 'job-scheduler');
const prefix = flag('--prefix', 'job');
const count = Number(flag('--count', '10'));
const timeoutMs = Number(flag('--timeout-ms', '60000'));
if (servers.length === 0) throw new Error('--servers is required (host:port,host:port,...)');
if (!Number.isInteger(count) || count < 1 || count > 1000) throw new Error('--count must be 1 to 1000');

const cv = connect({ servers });
const jobs = Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i + 1}`, input: i + 1 }));
try {
  await submitJobs(cv, ns, jobs);
  console.log(`submitted ${count} jobs to ${ns}; waiting for them`);
  process.exitCode = (await waitForJobs()) ? 0 : 1;
} finally {
  await cv.close(); // destroys the session at once
}

/** True once every job is done (each printed with its run); false at the timeout. */
async function waitForJobs(): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await readState(cv, ns);
    const pending = jobs.filter((j) => state.jobs.get(j.id)?.state !== 'done');
    if (pending.length === 0) {
      for (const job of jobs) {
        const result = state.results.get(job.id);
        const ok = result?.output === compute(job.input) ? 'ok' : 'WRONG';
        console.log(
          `${job.id}: run ${result?.runId} by ${result?.worker} (fence ${result?.fence}) -> ${result?.output} ${ok}`,
        );
      }
      return true;
    }
    if (Date.now() > deadline) {
      console.error(
        `${pending.length} jobs not done after ${timeoutMs} ms: ${pending.map((j) => j.id).join(', ')}`,
      );
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
