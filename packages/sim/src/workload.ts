import type { Cluster } from './cluster.js';
import type { KvCommand, KvResult } from './kv.js';
import { HistoryRecorder, type KvInput, type KvOperation, type KvOutput } from './linearizability/index.js';
import { Rng } from './rng.js';

/**
 * Closed-loop clients issuing get/put/cas on a small key space. Writes (and some reads)
 * go through the log; other reads take a ReadIndex path, 'quorum' or 'lease'. Each client
 * has one operation outstanding, retries it on other nodes with the same request id (so
 * it takes effect at most once), and gives up after `attemptsMax` attempts or `opTimeoutMs`:
 * the operation is then recorded as having an unknown outcome. Every call and return goes
 * into a history for the linearizability checker.
 */

export type ReadPath = 'log' | 'quorum' | 'lease';

export interface WorkloadOptions {
  readonly clients: number;
  /** Keys are k0..k{keys-1}: a small space, so operations contend. */
  readonly keys: number;
  /** Pause between a client's operations. */
  readonly thinkMinMs: number;
  readonly thinkMaxMs: number;
  /** How long one attempt waits for its answer before retrying elsewhere. */
  readonly attemptTimeoutMs: number;
  /** Attempts per operation, counting redirects from non-leaders. */
  readonly attemptsMax: number;
  /** The whole operation's budget, from its call. */
  readonly opTimeoutMs: number;
  /** Pause before retrying after a refusal (not leader, node down). */
  readonly retryPauseMs: number;
  /** Relative weights of the operation kinds. */
  readonly mix: { readonly get: number; readonly put: number; readonly cas: number };
  /** Relative weights of the read paths for gets. */
  readonly readPaths: { readonly log: number; readonly quorum: number; readonly lease: number };
}

export const defaultWorkloadOptions: WorkloadOptions = {
  clients: 4,
  keys: 3,
  thinkMinMs: 0,
  thinkMaxMs: 60,
  attemptTimeoutMs: 400,
  attemptsMax: 12,
  opTimeoutMs: 3_000,
  retryPauseMs: 25,
  mix: { get: 4, put: 3, cas: 3 },
  readPaths: { log: 1, quorum: 1, lease: 1 },
};

export interface WorkloadStats {
  invoked: number;
  completed: number;
  /** Gave up: unknown outcome. */
  abandoned: number;
  attempts: number;
  byPath: Record<ReadPath | 'write', number>;
}

interface Attempt {
  readonly id: number;
  readonly node: number;
  /** The node's life when the attempt was made: a restarted node has forgotten the client. */
  readonly life: number;
  /** The ReadIndex context, for reads off the log. */
  readonly context: string | null;
}

interface ClientOp {
  readonly opId: number;
  readonly client: number;
  readonly input: KvInput;
  readonly path: ReadPath | 'write';
  /** For operations through the log: the command, with a request id fixed across retries. */
  readonly command: KvCommand | null;
  readonly deadlineMs: number;
  attempts: number;
  attempt: Attempt | null;
}

interface ClientState {
  readonly index: number;
  readonly clientId: string;
  seq: number;
  leaderHint: number | null;
  op: ClientOp | null;
  /** The last value this client saw per key, so CAS has a fair chance of succeeding. */
  readonly seen: Map<string, string | null>;
}

export class Workload {
  readonly #cluster: Cluster;
  readonly #options: WorkloadOptions;
  readonly #rng: Rng;
  readonly #recorder = new HistoryRecorder<KvInput, KvOutput>();
  readonly #clients: ClientState[];
  /** Waiting operations by request key (`clientId#seq`) and by read context. */
  readonly #byRequest = new Map<string, ClientOp>();
  readonly #byContext = new Map<string, ClientOp>();
  readonly #stats: WorkloadStats = {
    invoked: 0,
    completed: 0,
    abandoned: 0,
    attempts: 0,
    byPath: { write: 0, log: 0, quorum: 0, lease: 0 },
  };
  #issuing = false;
  #draining = false;
  #nextAttemptId = 1;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(options: { cluster: Cluster; seed: number; workload?: Partial<WorkloadOptions> }) {
    const o: WorkloadOptions = { ...defaultWorkloadOptions, ...options.workload };
    if (!Number.isSafeInteger(o.clients) || o.clients < 1)
      throw new RangeError('Workload: clients must be >= 1');
    if (!Number.isSafeInteger(o.keys) || o.keys < 1) throw new RangeError('Workload: keys must be >= 1');
    if (o.attemptsMax < 1 || o.attemptTimeoutMs <= 0 || o.opTimeoutMs <= 0 || o.thinkMaxMs < o.thinkMinMs) {
      throw new RangeError('Workload: bad limits');
    }
    this.#cluster = options.cluster;
    this.#options = o;
    this.#rng = Rng.fork({ seed: options.seed, label: 'workload' });
    this.#clients = Array.from({ length: o.clients }, (_, index) => ({
      index,
      clientId: `c${index}`,
      seq: 0,
      leaderHint: null,
      op: null,
      seen: new Map(),
    }));
  }

  /** Start issuing operations: each client begins after a random think time. */
  start(): void {
    if (this.#unsubscribe.length === 0) {
      this.#unsubscribe.push(this.#cluster.onApply((event) => this.#onApply(event)));
      this.#unsubscribe.push(this.#cluster.onRead((event) => this.#onRead(event)));
    }
    this.#issuing = true;
    for (const client of this.#clients) this.#scheduleNext(client);
  }

  /** Issue no new operations; those outstanding carry on. */
  stop(): void {
    this.#issuing = false;
  }

  /**
   * Outstanding operations retry without limit from now on: once faults stop, each must
   * complete, and the run's liveness bound decides how long that may take.
   */
  drain(): void {
    this.#draining = true;
  }

  /** Operations called but neither completed nor abandoned. */
  get pendingCount(): number {
    let n = 0;
    for (const client of this.#clients) if (client.op !== null) n++;
    return n;
  }

  stats(): Readonly<WorkloadStats> {
    return { ...this.#stats, byPath: { ...this.#stats.byPath } };
  }

  /** The history so far; pending operations appear with unknown outcomes. */
  history(): KvOperation[] {
    return this.#recorder.operations();
  }

  /** One line per outstanding operation, for liveness failure reports. */
  describePending(): string[] {
    const out: string[] = [];
    for (const client of this.#clients) {
      const op = client.op;
      if (op === null) continue;
      const at = op.attempt === null ? 'between attempts' : `attempt ${op.attempts} at n${op.attempt.node}`;
      out.push(`${client.clientId}: ${op.path} ${JSON.stringify(op.input)} (${at})`);
    }
    return out;
  }

  #scheduleNext(client: ClientState): void {
    if (!this.#issuing) return;
    const o = this.#options;
    this.#cluster.schedule({
      afterMs: this.#rng.intBetween({ min: o.thinkMinMs, max: o.thinkMaxMs }),
      label: `client ${client.clientId} next`,
      run: () => this.#invoke(client),
    });
  }

  #invoke(client: ClientState): void {
    if (!this.#issuing || client.op !== null) return;
    const o = this.#options;
    const rng = this.#rng;
    const key = `k${rng.nextInt(o.keys)}`;
    const seq = ++client.seq;
    const requestId = { clientId: client.clientId, seq };
    const value = `${client.clientId}.${seq}`;
    const kind = weighted(rng, o.mix);
    let input: KvInput;
    let command: KvCommand | null;
    let path: ReadPath | 'write' = 'write';
    switch (kind) {
      case 'put':
        input = { kind: 'put', key, value };
        command = { op: 'put', key, value, requestId };
        break;
      case 'cas': {
        // Mostly expect what we last saw; sometimes a guess that will likely fail.
        const expected = rng.chance(0.8)
          ? (client.seen.get(key) ?? null)
          : `c${rng.nextInt(o.clients)}.${seq}`;
        input = { kind: 'cas', key, expected, value };
        command = { op: 'cas', key, expected, value, requestId };
        break;
      }
      default:
        input = { kind: 'get', key };
        path = weighted(rng, o.readPaths);
        command = path === 'log' ? { op: 'get', key, requestId } : null;
        break;
    }
    const nowMs = this.#cluster.nowMs;
    const opId = this.#recorder.invoke(client.index, input, nowMs);
    const op: ClientOp = {
      opId,
      client: client.index,
      input,
      path,
      command,
      deadlineMs: nowMs + o.opTimeoutMs,
      attempts: 0,
      attempt: null,
    };
    client.op = op;
    this.#stats.invoked++;
    this.#stats.byPath[path]++;
    if (command !== null) this.#byRequest.set(requestKey(client.clientId, seq), op);
    this.#attempt(client, op);
  }

  #attempt(client: ClientState, op: ClientOp): void {
    if (client.op !== op) return;
    const o = this.#options;
    const cluster = this.#cluster;
    if (!this.#draining && (op.attempts >= o.attemptsMax || cluster.nowMs >= op.deadlineMs)) {
      this.#abandon(client, op);
      return;
    }
    op.attempts++;
    this.#stats.attempts++;
    const node = client.leaderHint ?? this.#randomMember();
    const attempt: Attempt = {
      id: this.#nextAttemptId++,
      node,
      life: cluster.node(node).life,
      context: op.command === null ? `${client.clientId}.${client.seq}.${op.attempts}` : null,
    };
    op.attempt = attempt;
    let accepted: boolean;
    if (op.command !== null) {
      accepted = cluster.isAlive(node) && cluster.propose(node, op.command).isLeader;
    } else {
      const mode = op.path === 'lease' ? 'lease' : 'quorum';
      const context = attempt.context ?? '';
      this.#byContext.set(context, op);
      accepted = cluster.isAlive(node) && cluster.read(node, { context, key: op.input.key, mode }).ok;
      if (!accepted) this.#byContext.delete(context);
    }
    if (!accepted) {
      // Follow the refusing node's idea of the leader, or try a random node next.
      const hint = cluster.isAlive(node) ? cluster.leader(node) : null;
      client.leaderHint = hint === node ? null : hint;
      op.attempt = null;
      cluster.schedule({
        afterMs: o.retryPauseMs,
        label: `client ${client.clientId} retry`,
        run: () => this.#attempt(client, op),
      });
      return;
    }
    cluster.schedule({
      afterMs: o.attemptTimeoutMs,
      label: `client ${client.clientId} timeout`,
      run: () => {
        if (client.op !== op || op.attempt?.id !== attempt.id) return;
        if (attempt.context !== null) this.#byContext.delete(attempt.context);
        op.attempt = null;
        client.leaderHint = null;
        this.#attempt(client, op);
      },
    });
  }

  /** A random current member (voter or learner), or a random node when no one leads. */
  #randomMember(): number {
    const cluster = this.#cluster;
    const members = cluster.members();
    if (members === null) return this.#rng.nextInt(cluster.nodeCount);
    const nodes = [...members.voters, ...members.learners].sort((a, b) => a - b);
    return nodes[this.#rng.nextInt(nodes.length)] ?? 0;
  }

  #onApply(event: Parameters<Parameters<Cluster['onApply']>[0]>[0]): void {
    const command = event.record.command;
    if (command === null || event.outcome === null || event.outcome.kind === 'stale') return;
    const op = this.#byRequest.get(requestKey(command.requestId.clientId, command.requestId.seq));
    const attempt = op?.attempt;
    if (op === undefined || attempt === null || attempt === undefined) return;
    // Only the server the client is talking to answers it, and only in the life it was asked.
    if (event.node !== attempt.node || this.#cluster.node(event.node).life !== attempt.life) return;
    const client = this.#clients[op.client];
    if (client === undefined) return;
    const result = event.outcome.result;
    if (op.input.kind !== 'get') this.#cluster.acknowledgeWrite(event.record.index);
    this.#complete(client, op, outputOf(result));
  }

  #onRead(event: Parameters<Parameters<Cluster['onRead']>[0]>[0]): void {
    const op = this.#byContext.get(event.request.context);
    if (op === undefined) return;
    this.#byContext.delete(event.request.context);
    const client = this.#clients[op.client];
    const attempt = op.attempt;
    if (client === undefined || attempt === null || attempt.context !== event.request.context) return;
    if (event.ok) {
      this.#complete(client, op, { value: event.value });
      return;
    }
    op.attempt = null;
    client.leaderHint = null;
    this.#cluster.schedule({
      afterMs: this.#options.retryPauseMs,
      label: `client ${client.clientId} retry`,
      run: () => this.#attempt(client, op),
    });
  }

  #complete(client: ClientState, op: ClientOp, output: KvOutput): void {
    this.#recorder.complete(op.opId, output, this.#cluster.nowMs);
    this.#stats.completed++;
    if ('value' in output) client.seen.set(op.input.key, output.value);
    else if (op.input.kind === 'put' || (op.input.kind === 'cas' && 'ok' in output && output.ok)) {
      client.seen.set(op.input.key, op.input.value);
    }
    if (op.attempt !== null) client.leaderHint = op.attempt.node;
    this.#finish(client, op);
  }

  #abandon(client: ClientState, op: ClientOp): void {
    this.#recorder.abandon(op.opId);
    this.#stats.abandoned++;
    this.#finish(client, op);
  }

  #finish(client: ClientState, op: ClientOp): void {
    client.op = null;
    op.attempt = null;
    if (op.command !== null) {
      this.#byRequest.delete(requestKey(op.command.requestId.clientId, op.command.requestId.seq));
    }
    this.#scheduleNext(client);
  }
}

function requestKey(clientId: string, seq: number): string {
  return `${clientId}#${seq}`;
}

function outputOf(result: KvResult): KvOutput {
  switch (result.op) {
    case 'put':
      return {};
    case 'cas':
      return { ok: result.ok };
    case 'get':
      return { value: result.value };
  }
}

function weighted<K extends string>(rng: Rng, weights: Readonly<Record<K, number>>): K {
  const keys = Object.keys(weights) as K[];
  let total = 0;
  for (const key of keys) total += Math.max(0, weights[key]);
  if (!(total > 0)) throw new RangeError('weighted: all weights are zero');
  let x = rng.nextFloat() * total;
  for (const key of keys) {
    x -= Math.max(0, weights[key]);
    if (x < 0) return key;
  }
  const last = keys[keys.length - 1];
  if (last === undefined) throw new RangeError('weighted: no choices');
  return last;
}
