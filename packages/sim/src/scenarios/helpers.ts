import { EntryType, entrySizeBytes } from '@conclave/raft';
import { Cluster, type ClusterOptions, type KvCommandInput } from '../cluster.js';
import { encodeCommand, formatRequestId, type KvCommand } from '../kv.js';
import { Rng } from '../rng.js';

/**
 * Small helpers for the scenario suites, built only on the Cluster's public API: MIT
 * 6.824-style checks (one leader, no leader, agreeing terms), many commands agreed at
 * once, and a few observations of what the nodes did (snapshot installs, commit rules).
 */

/** The simulator's default election timeout: 10 ticks of 10 ms, randomized up to twice that. */
export const electionTimeoutMs = 100;

export function allNodes(c: Cluster): number[] {
  return Array.from({ length: c.nodeCount }, (_, i) => i);
}

/** Nodes that are running and not MIT-disconnected. */
export function reachable(c: Cluster): number[] {
  return allNodes(c).filter((i) => c.isAlive(i) && c.isConnected(i));
}

/** A seeded random stream for a test's own choices (separate from the world's streams). */
export function scriptRng(seed: number, label: string): Rng {
  return Rng.fork({ seed, label: `scenario/${label}` });
}

/**
 * The leader among running, connected nodes, once every one of them follows it in the
 * same term (MIT's checkOneLeader, made stricter: the leader must also be recognised).
 */
export function stableLeader(c: Cluster): number | null {
  const nodes = reachable(c);
  const leaders = nodes.filter((i) => c.isLeader(i));
  if (leaders.length !== 1) return null;
  const leader = leaders[0];
  if (leader === undefined) return null;
  const term = c.term(leader);
  return nodes.every((i) => c.leader(i) === leader && c.term(i) === term) ? leader : null;
}

/** Wait (in virtual time) for a stable leader; throws if none emerges in time. */
export function checkOneLeader(c: Cluster, options: { timeoutMs?: number } = {}): number {
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (!c.runUntil(() => stableLeader(c) !== null, { timeoutMs })) {
    const state = allNodes(c)
      .map((i) => `n${i}:${c.isAlive(i) ? 'up' : 'down'}/${c.isConnected(i) ? 'conn' : 'disc'}/t${c.term(i)}`)
      .join(' ');
    throw new Error(`no stable leader within ${timeoutMs} ms (seed ${c.seed}, t=${c.nowMs}): ${state}`);
  }
  const leader = stableLeader(c);
  if (leader === null) throw new Error('unreachable: stable leader vanished');
  return leader;
}

/** No running, connected node believes it leads. */
export function noConnectedLeader(c: Cluster): boolean {
  return reachable(c).every((i) => !c.isLeader(i));
}

/** The term all running, connected nodes agree on, or null if they disagree. */
export function agreedTerm(c: Cluster): number | null {
  const terms = new Set(reachable(c).map((i) => c.term(i)));
  if (terms.size !== 1) return null;
  const [term] = [...terms];
  return term ?? null;
}

/** Create a cluster and wait for its first stable leader. */
export function electedCluster(options: ClusterOptions): { c: Cluster; leader: number } {
  const c = Cluster.create(options);
  const leader = checkOneLeader(c, { timeoutMs: 3_000 });
  return { c, leader };
}

/** The request ids of the commands applied by any node: command → first index applied at. */
function requestKey(command: KvCommand): string {
  return formatRequestId(command.requestId);
}

/**
 * Many concurrent one()s: propose every command (at every running, connected node that
 * accepts it as leader, retrying with the same request ids through later leaders) and wait
 * until each is applied by `expectedServers` nodes. Acknowledges the writes and returns
 * each command's index, in input order; throws on timeout.
 */
export function agreeAll(
  c: Cluster,
  inputs: readonly KvCommandInput[],
  expectedServers: number,
  options: { timeoutMs?: number; attemptMs?: number } = {},
): number[] {
  const commands = inputs.map((input) => c.command(input));
  const indexOf = new Map<string, number>();
  const unsubscribe = c.onApply(({ record }) => {
    if (record.command === null) return;
    const key = requestKey(record.command);
    if (!indexOf.has(key)) indexOf.set(key, record.index);
  });
  const done = (command: KvCommand): boolean => {
    const index = indexOf.get(requestKey(command));
    return index !== undefined && c.nCommitted(index).count >= expectedServers;
  };
  const allDone = () => commands.every(done);
  const deadlineMs = c.nowMs + (options.timeoutMs ?? 20_000);
  const attemptMs = options.attemptMs ?? 1_000;
  try {
    while (!allDone() && c.nowMs < deadlineMs) {
      let proposed = false;
      for (const command of commands) {
        if (indexOf.has(requestKey(command))) continue;
        for (const i of reachable(c))
          if (c.isLeader(i)) proposed = c.propose(i, command).isLeader || proposed;
      }
      const waitMs = Math.min(proposed ? attemptMs : 50, deadlineMs - c.nowMs);
      c.runUntil(allDone, { timeoutMs: Math.max(0, waitMs) });
    }
  } finally {
    unsubscribe();
  }
  if (!allDone()) {
    const missing = commands.filter((command) => !done(command)).length;
    throw new Error(`agreeAll: ${missing} of ${commands.length} commands not on ${expectedServers} nodes`);
  }
  return commands.map((command) => {
    const index = indexOf.get(requestKey(command)) ?? -1;
    c.acknowledgeWrite(index);
    return index;
  });
}

/** Wait until every running node has applied the same (highest) index. */
export function waitForConvergence(c: Cluster, options: { timeoutMs: number }): boolean {
  return c.runUntil(
    () => {
      const up = allNodes(c).filter((i) => c.isAlive(i));
      const applied = new Set(up.map((i) => c.appliedIndex(i)));
      return applied.size === 1;
    },
    { timeoutMs: options.timeoutMs },
  );
}

/**
 * How many times node i installed a snapshot sent by a leader, read from its applied
 * history: its state machine jumped over indexes it never applied itself. (Restarting
 * from its own snapshot never leaves such a gap: it had applied those entries.)
 */
export function snapshotJumps(c: Cluster, i: number): number {
  let jumps = 0;
  let previous = 0;
  for (const record of c.node(i).appliedRecords()) {
    if (record.index > previous + 1) jumps++;
    previous = Math.max(previous, record.index);
  }
  if (c.node(i).appliedMax > previous) jumps++;
  return jumps;
}

/** The bytes a command's entry costs on the wire and on disk (data + entry framing). */
export function commandEntryBytes(command: KvCommand): number {
  return entrySizeBytes({ index: 0, term: 0, type: EntryType.Normal, data: encodeCommand(command) });
}

/**
 * Watches leaders' commit indexes after every event it is driven through and records any
 * commit that a leader advanced to an entry of an earlier term: Raft (§5.4.2) lets a
 * leader count replicas only for entries of its own term; older ones commit indirectly.
 */
export class LeaderCommitWatch {
  readonly violations: string[] = [];
  /** Per node: the term and life in which it leads, and its commit when it took over. */
  readonly #baseline = new Map<number, { term: number; life: number; commit: number }>();
  readonly #c: Cluster;
  leaderTermsSeen = 0;

  constructor(c: Cluster) {
    this.#c = c;
  }

  observe(): void {
    const c = this.#c;
    for (let i = 0; i < c.nodeCount; i++) {
      const node = c.node(i);
      if (!node.isLeader()) {
        this.#baseline.delete(i);
        continue;
      }
      const term = node.term();
      const commit = node.commitIndex();
      const base = this.#baseline.get(i);
      if (base === undefined || base.term !== term || base.life !== node.life) {
        this.#baseline.set(i, { term, life: node.life, commit });
        this.leaderTermsSeen++;
        continue;
      }
      if (commit > base.commit) {
        const committedTerm = node.logView().term(commit);
        if (committedTerm !== null && committedTerm !== term) {
          this.violations.push(`n${i} leading term ${term} committed ${commit} of term ${committedTerm}`);
        }
        base.commit = commit;
      }
    }
  }

  /** advance(ms), observing after every event. */
  advance(ms: number): void {
    this.#c.runUntil(
      () => {
        this.observe();
        return false;
      },
      { timeoutMs: ms },
    );
  }
}

/**
 * Closed-loop clients for churn scenarios, running inside virtual time: each proposes a
 * fresh command at a random node and, when that node accepts it as leader, polls until the
 * index it got is applied somewhere. If its own command landed there it counts as
 * committed (and is acknowledged to the checkers, so it must survive whatever follows);
 * if another entry did, or nothing within `giveUpMs`, the client moves on.
 */
export class ChurnClients {
  readonly committed: { readonly index: number; readonly command: KvCommand }[] = [];
  proposals = 0;
  #running = true;
  readonly #c: Cluster;
  readonly #rng: Rng;
  readonly #giveUpMs: number;
  #seq = 0;

  constructor(c: Cluster, options: { count: number; rng: Rng; giveUpMs?: number }) {
    this.#c = c;
    this.#rng = options.rng;
    this.#giveUpMs = options.giveUpMs ?? 1_000;
    for (let k = 0; k < options.count; k++) this.#next(k, 0);
  }

  stop(): void {
    this.#running = false;
  }

  #next(client: number, afterMs: number): void {
    this.#c.schedule({ afterMs, label: `client ${client}`, run: () => this.#attempt(client) });
  }

  #attempt(client: number): void {
    if (!this.#running) return;
    const c = this.#c;
    const command = c.command({
      op: 'put',
      key: `c${client}`,
      value: String(++this.#seq),
      requestId: { clientId: `churn${client}`, seq: this.#seq },
    });
    const node = this.#rng.nextInt(c.nodeCount);
    const result = c.propose(node, command);
    this.proposals++;
    if (!result.isLeader) {
      this.#next(client, this.#rng.intBetween({ min: 5, max: 50 }));
      return;
    }
    this.#poll(client, command, result.index, c.nowMs + this.#giveUpMs);
  }

  #poll(client: number, command: KvCommand, index: number, deadlineMs: number): void {
    const c = this.#c;
    c.schedule({
      afterMs: 10,
      label: `client ${client} poll`,
      run: () => {
        if (!this.#running) return;
        const { count, command: there } = c.nCommitted(index);
        if (count > 0) {
          if (there !== null && formatRequestId(there.requestId) === formatRequestId(command.requestId)) {
            this.committed.push({ index, command });
            c.acknowledgeWrite(index);
          }
          this.#next(client, 0);
        } else if (c.nowMs >= deadlineMs) {
          this.#next(client, 0);
        } else {
          this.#poll(client, command, index, deadlineMs);
        }
      },
    });
  }
}
