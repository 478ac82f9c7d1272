/**
 * Memory of processes the snapshot benchmark started, read from Linux's /proc: the resident
 * set now, its high-water mark, and a reset of that mark (so a peak describes one phase,
 * not the whole life of a server). Plus a CLI run whose peak is sampled while it runs.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Cleanup } from './cleanup.js';
import { type ProcMemory, parseProcStatus } from './snapshot-bench-data.js';

export function readMemory(pid: number): ProcMemory {
  try {
    return parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch (error) {
    // A process that exited (a zombie keeps its status file, without the memory lines).
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`no memory figures for process ${pid} (has it exited?): ${reason}`);
  }
}

/**
 * Reset VmHWM to the current VmRSS (clear_refs "5", Linux 4.0+). Allowed on our own child
 * processes; without it a server's peak would be the load phase's, not the save's.
 */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** How often a CLI run's peak is sampled: VmHWM only grows, so the last read is the best. */
const cliPollMs = 20;
/** The CLI prints a line or a small JSON document; anything longer is kept by its tail. */
const cliOutputCharsMax = 1024 * 1024;

export interface CliRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly wallMs: number;
  /** The last VmHWM read before the process exited; 0 if it exited before the first read. */
  readonly peakRssBytes: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `node <args>` to its exit, sampling its VmHWM every cliPollMs. Registered with
 * `cleanup` while it runs, so an interrupted benchmark kills it; killed after `timeoutMs`.
 */
export async function runMeasuredCli(options: {
  args: readonly string[];
  cleanup: Cleanup;
  timeoutMs: number;
}): Promise<CliRun> {
  const started = performance.now();
  const child = spawn(process.execPath, options.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output.stdout = (output.stdout + chunk).slice(-cliOutputCharsMax);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output.stderr = (output.stderr + chunk).slice(-cliOutputCharsMax);
  });
  let peakRssBytes = 0;
  const sample = () => {
    if (child.pid === undefined) return;
    try {
      peakRssBytes = Math.max(peakRssBytes, readMemory(child.pid).peakRssBytes);
    } catch {
      // Gone between the exit and this read: the previous sample is the last one.
    }
  };
  const poller = setInterval(sample, cliPollMs);
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const resource = {
    name: `conclave ${options.args[1] ?? ''} ${options.args[2] ?? ''}`.trim(),
    release: async () => {
      child.kill('SIGKILL');
    },
    releaseNow: () => {
      child.kill('SIGKILL');
    },
  };
  options.cleanup.add(resource);
  try {
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.once('error', reject);
        // 'close' comes after the output streams end, so stdout is complete.
        child.once('close', (code, sig) => resolve([code, sig]));
      },
    );
    return { exitCode, signal, wallMs: performance.now() - started, peakRssBytes, ...output };
  } finally {
    clearInterval(poller);
    clearTimeout(killer);
    await options.cleanup.release(resource);
  }
}
