/**
 * Process-level test harness: real `conclave agent` processes (the built dist), on loopback,
 * with data dirs under os.tmpdir(). Every wait is a bounded poll of a condition or a process
 * event; nothing sleeps blindly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { groupOfKey } from '@conclave/protocol';
import { freePorts } from './free-ports.js';
import { pollUntil } from './poll.js';

const loopback = '127.0.0.1';

/** The built CLI the tests run: `npm test` builds it first. */
export const cliPath = fileURLToPath(new URL('../../cli/dist/conclave.js', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(cliPath)) {
    throw new Error(
      `${cliPath} is missing: run \`npm run build\` first (\`npm test\` builds before it tests)`,
    );
  }
}

/** Poll `predicate` until it returns something other than undefined/false, or fail after timeoutMs. */
export function waitFor<T>(
  predicate: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs: number; intervalMs: number; what: string },
): Promise<T> {
  return pollUntil(async () => {
    const value = await predicate();
    return value === false ? undefined : value;
  }, options);
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One run of one process: its handle, its output, its exit. */
class Run {
  stdout = '';
  stderr = '';
  exit: Exit | null = null;
  readonly exited: Promise<Exit>;

  constructor(readonly child: ChildProcess) {
    // Keep the output bounded: the tail is what explains a failure.
    const keep = (text: string) => (text.length > 256 * 1024 ? text.slice(-128 * 1024) : text);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout = keep(this.stdout + chunk);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = keep(this.stderr + chunk);
    });
    this.exited = new Promise((resolve) => {
      // 'close' comes after the stdio streams end, so the output is complete.
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      child.once('error', (error) => {
        this.stderr += `spawn error: ${error.message}\n`;
      });
    });
  }
}

export interface ServerSpec {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly raftPort: number;
  readonly httpPort: number;
  readonly args: readonly string[];
}

/** One server of the cluster, started, killed and restarted with the same arguments. */
export class ServerProcess {
  private run: Run | null = null;
  /** Every child ever spawned for this server, to prove none outlives the test. */
  readonly children: ChildProcess[] = [];

  constructor(readonly spec: ServerSpec) {}

  get nodeId(): string {
    return this.spec.nodeId;
  }

  get url(): string {
    return `http://${loopback}:${this.spec.httpPort}`;
  }

  get running(): boolean {
    return this.run !== null && this.run.exit === null;
  }

  get output(): string {
    return this.run === null ? '' : `${this.run.stdout}${this.run.stderr}`;
  }

  private spawnRun(): Run {
    if (this.running) throw new Error(`${this.nodeId} is already running`);
    const child = spawn(process.execPath, [cliPath, ...this.spec.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(child);
    this.run = new Run(child);
    return this.run;
  }

  /** Spawn, and resolve once the agent prints that it is up (HTTP listening). */
  async start(options: { timeoutMs?: number } = {}): Promise<void> {
    const run = this.spawnRun();
    const timeoutMs = options.timeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.nodeId} did not come up in ${timeoutMs} ms:\n${this.output}`));
      }, timeoutMs);
      const onData = () => {
        if (/ is up: HTTP /.test(run.stdout)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (exit: Exit) => {
        cleanup();
        reject(new Error(`${this.nodeId} exited (${describeExit(exit)}) while starting:\n${this.output}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        run.child.stdout?.off('data', onData);
      };
      run.child.stdout?.on('data', onData);
      run.exited.then(onExit, reject);
      onData();
    });
  }

  /** Spawn and wait for the process to exit by itself (a refusal to start). */
  async runToExit(options: { timeoutMs: number }): Promise<Exit & { stdout: string; stderr: string }> {
    const run = this.spawnRun();
    const exit = await raceTimeout(run.exited, options.timeoutMs);
    if (exit === null) {
      await this.kill('SIGKILL');
      throw new Error(`${this.nodeId} was still running after ${options.timeoutMs} ms:\n${this.output}`);
    }
    return { ...exit, stdout: run.stdout, stderr: run.stderr };
  }

  /** Freezes the process (SIGSTOP): it holds its sockets and files but answers nothing. */
  pause(): void {
    this.signalRunning('SIGSTOP');
  }

  /** Lets a paused process go on (SIGCONT). */
  resume(): void {
    this.signalRunning('SIGCONT');
  }

  private signalRunning(signal: NodeJS.Signals): void {
    if (this.run === null || !this.running)
      throw new Error(`${this.nodeId} is not running: cannot send ${signal}`);
    this.run.child.kill(signal);
  }

  /** Send a signal and wait for the exit. A process ignoring SIGTERM is killed after timeoutMs. */
  async kill(signal: NodeJS.Signals, options: { timeoutMs?: number } = {}): Promise<Exit> {
    const run = this.run;
    if (run === null) throw new Error(`${this.nodeId} was never started`);
    if (run.exit !== null) return run.exit;
    run.child.kill(signal);
    const timeoutMs = options.timeoutMs ?? 15_000;
    const exit = await raceTimeout(run.exited, timeoutMs);
    if (exit !== null) return exit;
    run.child.kill('SIGKILL');
    await run.exited;
    throw new Error(`${this.nodeId} ignored ${signal} for ${timeoutMs} ms:\n${this.output}`);
  }
}

/** The promise's value, or null if it takes longer than timeoutMs. */
async function raceTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeExit(exit: Exit): string {
  return exit.signal === null ? `code ${exit.code}` : `signal ${exit.signal}`;
}

/** Several servers forming one cluster, each with its own data dir under one temp root. */
export class ProcessCluster {
  private constructor(
    readonly root: string,
    readonly servers: readonly ServerProcess[],
    readonly groups: number,
  ) {}

  /**
   * `join`: `named` (default) gives each server the others as `id@host:port`; `addresses`
   * gives every server the same flags, a plain address list of all servers, itself
   * included, as Consul servers and Kubernetes StatefulSets are started.
   */
  static async create(options: {
    size: number;
    groups: number;
    tickMs: number;
    join?: 'named' | 'addresses';
  }): Promise<ProcessCluster> {
    assertBuilt();
    const root = await mkdtemp(join(tmpdir(), 'conclave-e2e-'));
    const ports = await freePorts(options.size * 2);
    const ids = Array.from({ length: options.size }, (_, i) => `s${i + 1}`);
    const raftPort = (i: number) => ports[i] ?? 0;
    const httpPort = (i: number) => ports[options.size + i] ?? 0;
    const servers = ids.map((nodeId, i) => {
      const dataDir = join(root, nodeId);
      const join_ =
        options.join === 'addresses'
          ? ids.map((_, j) => `${loopback}:${raftPort(j)}`).join(',')
          : ids
              .map((id, j) => ({ id, j }))
              .filter(({ j }) => j !== i)
              .map(({ id, j }) => `${id}@${loopback}:${raftPort(j)}`)
              .join(',');
      return new ServerProcess({
        nodeId,
        dataDir,
        raftPort: raftPort(i),
        httpPort: httpPort(i),
        args: [
          'agent',
          '--node-id',
          nodeId,
          '--data-dir',
          dataDir,
          '--bind',
          `${loopback}:${raftPort(i)}`,
          '--http-addr',
          `${loopback}:${httpPort(i)}`,
          '--bootstrap-expect',
          String(options.size),
          '--join',
          join_,
          '--groups',
          String(options.groups),
          '--tick-ms',
          String(options.tickMs),
          '--log-level',
          'warn',
        ],
      });
    });
    return new ProcessCluster(root, servers, options.groups);
  }

  async startAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.start()));
  }

  get running(): ServerProcess[] {
    return this.servers.filter((s) => s.running);
  }

  byId(nodeId: string): ServerProcess {
    const server = this.servers.find((s) => s.nodeId === nodeId);
    if (server === undefined) throw new Error(`no server ${nodeId}`);
    return server;
  }

  /** SIGKILL every live child and wait for each exit. */
  async killAll(): Promise<void> {
    await Promise.all(this.servers.filter((s) => s.running).map((s) => s.kill('SIGKILL')));
  }

  /** Children of any server that have not exited: must be none after killAll. */
  liveChildren(): ChildProcess[] {
    return this.servers
      .flatMap((s) => s.children)
      .filter((c) => c.exitCode === null && c.signalCode === null);
  }

  async destroy(): Promise<void> {
    await this.killAll();
    await rm(this.root, { recursive: true, force: true });
  }

  /** agent/self of every running server. Throws if any cannot answer. */
  async view(): Promise<AgentSelf[]> {
    return Promise.all(this.running.map((s) => agentSelf(s.url)));
  }

  /**
   * The leader of every group, when every running server names the same known leader for it
   * and that leader is running; else undefined.
   */
  async agreedLeaders(): Promise<Map<number, string> | undefined> {
    const view = await this.view();
    const running = new Set(this.running.map((s) => s.nodeId));
    const leaders = new Map<number, string>();
    for (let groupId = 0; groupId < this.groups; groupId++) {
      const named = new Set(view.map((self) => self.groups[groupId]?.leaderId ?? null));
      const [leader] = [...named];
      if (named.size !== 1 || leader === undefined || leader === null || !running.has(leader))
        return undefined;
      const status = view.find((self) => self.nodeId === leader)?.groups[groupId];
      if (status?.role !== 'leader') return undefined;
      leaders.set(groupId, leader);
    }
    return leaders;
  }

  /**
   * Every group has an agreed leader and every running server has applied exactly the
   * leader's commit index (the cluster is quiescent and converged).
   */
  async converged(): Promise<Map<number, string> | undefined> {
    const leaders = await this.agreedLeaders();
    if (leaders === undefined) return undefined;
    const view = await this.view();
    for (const [groupId, leader] of leaders) {
      const commit = view.find((self) => self.nodeId === leader)?.groups[groupId]?.commitIndex;
      if (commit === undefined) return undefined;
      if (view.some((self) => self.groups[groupId]?.appliedIndex !== commit)) return undefined;
    }
    // Leadership may have moved while we looked: only a stable answer counts.
    const again = await this.agreedLeaders();
    if (again === undefined || [...leaders].some(([g, id]) => again.get(g) !== id)) return undefined;
    return leaders;
  }
}

// ---- HTTP ----------------------------------------------------------------------------

const requestTimeoutMs = 3000;

export interface GroupStatus {
  readonly groupId: number;
  readonly role: string;
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly voters: readonly string[];
}

export interface AgentSelf {
  readonly nodeId: string;
  readonly raftAddr: string;
  readonly groups: readonly GroupStatus[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function parseAgentSelf(value: unknown): AgentSelf {
  if (!isRecord(value) || typeof value.nodeId !== 'string' || !Array.isArray(value.groups)) {
    throw new Error(`agent/self answered ${JSON.stringify(value)}`);
  }
  const groups = value.groups.map((g: unknown): GroupStatus => {
    if (
      !isRecord(g) ||
      typeof g.groupId !== 'number' ||
      typeof g.role !== 'string' ||
      !(typeof g.leaderId === 'string' || g.leaderId === null) ||
      typeof g.term !== 'number' ||
      typeof g.commitIndex !== 'number' ||
      typeof g.appliedIndex !== 'number' ||
      !Array.isArray(g.voters)
    ) {
      throw new Error(`agent/self group answered ${JSON.stringify(g)}`);
    }
    return {
      groupId: g.groupId,
      role: g.role,
      leaderId: g.leaderId,
      term: g.term,
      commitIndex: g.commitIndex,
      appliedIndex: g.appliedIndex,
      voters: g.voters.map(String),
    };
  });
  return { nodeId: value.nodeId, raftAddr: String(value.raftAddr), groups };
}

export async function agentSelf(url: string): Promise<AgentSelf> {
  const response = await fetch(`${url}/v1/agent/self`, { signal: AbortSignal.timeout(requestTimeoutMs) });
  if (response.status !== 200) throw new Error(`agent/self: HTTP ${response.status}`);
  const body: unknown = await response.json();
  return parseAgentSelf(body);
}

export async function statusLeader(url: string): Promise<string> {
  const response = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(requestTimeoutMs) });
  if (response.status !== 200) throw new Error(`status/leader: HTTP ${response.status}`);
  const body: unknown = await response.json();
  if (typeof body !== 'string') throw new Error(`status/leader answered ${JSON.stringify(body)}`);
  return body;
}

const kvPath = (key: string) => `/v1/internal/kv/${encodeURIComponent(key)}`;

export async function putKey(
  url: string,
  key: string,
  value: string,
): Promise<{ status: number; leaderId: string | null; code: string | null }> {
  const response = await fetch(`${url}${kvPath(key)}`, {
    method: 'PUT',
    body: value,
    headers: { 'content-type': 'application/octet-stream' },
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  const body: unknown = await response.json().catch(() => null);
  const leaderId = isRecord(body) && typeof body.leaderId === 'string' ? body.leaderId : null;
  const code = isRecord(body) && typeof body.code === 'string' ? body.code : null;
  return { status: response.status, leaderId, code };
}

export async function getKey(
  url: string,
  key: string,
  mode: 'quorum' | 'lease' | 'stale',
): Promise<{ status: number; value: string }> {
  const response = await fetch(`${url}${kvPath(key)}?mode=${mode}`, {
    signal: AbortSignal.timeout(requestTimeoutMs),
  });
  return { status: response.status, value: await response.text() };
}

/** Run `task` over `items` with at most `concurrency` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ---- A routing writer ----------------------------------------------------------------

/**
 * Writes distinct keys, each to the current leader of its group (learned from agent/self of
 * any running server and from NOT_LEADER answers), retrying on 503s, timeouts and refused
 * connections for a bounded time. Records every write acknowledged with a 200.
 */
export class RoutingWriter {
  readonly acked = new Map<string, string>();
  /** Keys given up on after the retry budget: their outcome is unknown. */
  readonly abandoned: string[] = [];
  attempts = 0;
  private readonly leaderOf = new Map<number, string>();
  private sequence = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: ProcessCluster,
    private readonly options: { prefix: string; retryBudgetMs: number },
  ) {}

  /** Write one key and wait for the acknowledgement; throws if none comes within the budget. */
  async write(key: string, value: string): Promise<void> {
    if (!(await this.tryWrite(key, value))) throw new Error(`no acknowledgement for ${key}`);
  }

  /** Start `concurrency` loops writing fresh keys until stop(). */
  start(concurrency: number): void {
    this.stopping = false;
    this.loops = Array.from({ length: concurrency }, async () => {
      while (!this.stopping) {
        const key = `${this.options.prefix}-${String(this.sequence++).padStart(6, '0')}`;
        await this.tryWrite(key, `value-of-${key}`);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async tryWrite(key: string, value: string): Promise<boolean> {
    const groupId = groupOfKey({ key, groupCount: this.cluster.groups });
    try {
      await waitFor(() => this.attempt(groupId, key, value), {
        timeoutMs: this.options.retryBudgetMs,
        intervalMs: 20,
        what: `an acknowledged write of ${key}`,
      });
      this.acked.set(key, value);
      return true;
    } catch {
      this.abandoned.push(key);
      return false;
    }
  }

  private async attempt(groupId: number, key: string, value: string): Promise<true | undefined> {
    this.attempts++;
    let leader = this.leaderOf.get(groupId);
    if (leader === undefined) {
      await this.refreshLeaders();
      leader = this.leaderOf.get(groupId);
      if (leader === undefined) return undefined;
    }
    const server = this.cluster.byId(leader);
    if (!server.running) {
      this.leaderOf.delete(groupId);
      return undefined;
    }
    try {
      const outcome = await putKey(server.url, key, value);
      if (outcome.status === 200) return true;
      if (outcome.status === 503 && outcome.leaderId !== null && outcome.leaderId !== leader) {
        this.leaderOf.set(groupId, outcome.leaderId);
      } else this.leaderOf.delete(groupId);
      return undefined;
    } catch {
      // Refused, reset or timed out: the outcome is unknown, so the same value is written again.
      this.leaderOf.delete(groupId);
      return undefined;
    }
  }

  private async refreshLeaders(): Promise<void> {
    const running = this.cluster.running;
    const server = running[Math.floor(Math.random() * running.length)];
    if (server === undefined) return;
    try {
      const self = await agentSelf(server.url);
      for (const group of self.groups) {
        if (group.leaderId !== null) this.leaderOf.set(group.groupId, group.leaderId);
      }
    } catch {
      // Try another server next time.
    }
  }
}
