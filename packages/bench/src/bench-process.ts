/**
 * A server process the benchmark starts (a Conclave agent or an etcd member): its output
 * tail, for the error message when it fails, and a stop that always ends it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

/** Output kept per process: the tail is what explains a failure. */
const outputCharsMax = 64 * 1024;
/** How long a process may take to exit after SIGKILL before we stop waiting. */
const killWaitMs = 5000;

export class BenchProcess {
  readonly name: string;
  private outputTail = '';
  private exitCode: number | null = null;
  private exitSignal: NodeJS.Signals | null = null;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(options: {
    name: string;
    command: string;
    args: readonly string[];
    /** Added to this process's environment. */
    env?: Readonly<Record<string, string>>;
  }) {
    this.name = options.name;
    this.child = spawn(options.command, options.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const keep = (chunk: string) => {
      this.outputTail = (this.outputTail + chunk).slice(-outputCharsMax);
    };
    this.child.stdout?.setEncoding('utf8').on('data', keep);
    this.child.stderr?.setEncoding('utf8').on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      // A spawn failure (no such binary) emits 'error' and never 'exit'.
      this.child.once('error', (error) => {
        keep(`spawn error: ${error.message}\n`);
        this.exitCode = -1;
        resolve();
      });
    });
  }

  get output(): string {
    return this.outputTail;
  }

  /** The OS process id (to read its memory in /proc); undefined when the spawn failed. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  describeExit(): string {
    if (this.running) return 'running';
    return this.exitSignal === null ? `exited with code ${this.exitCode}` : `killed by ${this.exitSignal}`;
  }

  /** Resolve once the output matches `pattern`; reject if the process exits or time runs out. */
  async waitForOutput(pattern: RegExp, options: { timeoutMs: number }): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    const pollMs = 20;
    while (!pattern.test(this.outputTail)) {
      if (!this.running)
        throw new Error(`${this.name} ${this.describeExit()} while starting:\n${this.output}`);
      if (Date.now() >= deadline) {
        throw new Error(`${this.name} did not start within ${options.timeoutMs} ms:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * SIGKILL and wait for the exit. The benchmark deletes the data dirs right after, so there
   * is nothing a graceful stop would preserve, and a kill cannot hang.
   */
  async kill(): Promise<void> {
    if (!this.running) return;
    // A profiled agent (CONCLAVE_BENCH_NODE_ARGS) writes its profile only on a clean exit.
    if ((process.env.CONCLAVE_BENCH_NODE_ARGS ?? '') !== '') await this.signalAndWait('SIGTERM');
    if (this.running) await this.signalAndWait('SIGKILL');
  }

  /** Send `signal`, then wait up to killWaitMs for the exit. */
  private async signalAndWait(signal: NodeJS.Signals): Promise<void> {
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exited,
      new Promise((resolve) => {
        timer = setTimeout(resolve, killWaitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** The synchronous last resort, for process exit: send SIGKILL without waiting. */
  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Throws, with the dead one's output, unless every process is still running. */
export function assertAllRunning(processes: readonly BenchProcess[]): void {
  const dead = processes.find((p) => !p.running);
  if (dead !== undefined) throw new Error(`${dead.name} ${dead.describeExit()}:\n${dead.output}`);
}

/**
 * Processes and the temp dir they write to, released together: killed, then the dir
 * removed (at once, synchronously, when the bench process itself is exiting).
 */
export function processesInTempDir(options: {
  name: string;
  processes: readonly BenchProcess[];
  root: string;
}) {
  const { name, processes, root } = options;
  return {
    name,
    release: async () => {
      await Promise.all(processes.map((p) => p.kill()));
      await rm(root, { recursive: true, force: true });
    },
    releaseNow: () => {
      for (const p of processes) p.killNow();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
