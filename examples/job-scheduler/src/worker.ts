/**
 * One scheduler worker process:
 *
 *   node examples/job-scheduler/dist/worker.js --servers 127.0.0.1:8501,127.0.0.1:8502,127.0.0.1:8503 \
 *     --id w1 [--ns job-scheduler] [--poll-ms 200] [--work-ms 100]
 *
 * Prints one JSON line per event on stdout. SIGTERM or SIGINT: stops, destroys its session
 * (its locks, candidacy and membership go at once) and exits 0. If its session is lost or
 * a loop fails, it exits 1: a supervisor starts it again, fresh.
 */
import { connect } from '@conclave/client';
import { SchedulerWorker } from './scheduler.js';

interface Args {
  servers: string[];
  id: string;
  ns: string;
  pollMs: number;
  workMs: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { servers: [], id: '', ns: 'job-scheduler', pollMs: 200, workMs: 100 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i] ?? '';
    if (flag === '--servers') args.servers = value.split(',').filter((s) => s.length > 0);
    else if (flag === '--id') args.id = value;
    else if (flag === '--ns') args.ns = value;
    else if (flag === '--poll-ms') args.pollMs = Number(value);
    else if (flag === '--work-ms') args.workMs = Number(value);
    else throw new Error(`unknown argument ${flag}`);
  }
  if (args.servers.length === 0) throw new Error('--servers is required (host:port,host:port,...)');
  if (args.id === '') throw new Error('--id is required');
  for (const [name, ms] of [
    ['--poll-ms', args.pollMs],
    ['--work-ms', args.workMs],
  ] as const) {
    if (!Number.isInteger(ms) || ms < 1 || ms > 60_000) throw new Error(`${name} must be 1 to 60000`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const log = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), worker: args.id, ...event })}\n`);

// The shortest session TTL: a worker that dies loses its locks and candidacy 10 to 20 s later.
const cv = connect({ servers: args.servers, sessionTtlMs: 10_000, sessionName: `job-scheduler ${args.id}` });
const worker = new SchedulerWorker(cv, {
  id: args.id,
  ns: args.ns,
  pollMs: args.pollMs,
  workMs: args.workMs,
  log,
});

let stopping = false;
async function shutdown(code: number): Promise<never> {
  stopping = true;
  await worker.stop();
  await cv.close().catch(() => undefined);
  process.exit(code);
}

process.once('SIGTERM', () => void shutdown(0));
process.once('SIGINT', () => void shutdown(0));

try {
  await worker.start();
  await worker.failed();
} catch (error) {
  if (!stopping) {
    log({ event: 'failed', reason: error instanceof Error ? error.message : String(error) });
    await shutdown(1);
  }
}
