import { type Cluster, type Members, type MembershipChange, membershipShows } from './cluster.js';
import type { Rng } from './rng.js';

/**
 * The membership half of the nemesis: churn that keeps the cluster safe and, once faults
 * stop, live. Each churn is a task that walks one node out of the voters and back:
 *
 * - `rejoin`: remove voter v; let it run a while as a removed node; wipe its disk; when
 *   it is safe (see `rejoinSafe`), boot it empty, add it as a learner (it catches up by
 *   snapshot), and promote it to voter once it has caught up.
 * - `demote`: demote voter v to learner (its disk is kept), and promote it back once a
 *   while has passed and it has caught up.
 *
 * Rules (docs/simulation.md, "Membership churn"):
 * 1. Voters never drop below `votersMin` (a majority of the cluster size: 2 of 3, 3 of 5);
 *    a removal or demotion that would go below is not proposed, and its task is dropped.
 * 2. At most `tasksMax` tasks at once (n - votersMin), at most one of them `rejoin`.
 * 3. A node is wiped only once it is outside the leader's membership and not crashed by
 *    the crash nemesis; it stays down (the crash nemesis leaves it alone) until it rejoins.
 * 4. A wiped node rejoins only when every other node that has a disk holds, durably, a
 *    commit index at or past its removal and a term at or past the last term the wiped
 *    node had, every running one has applied a membership without it, and no message
 *    from or to its old incarnation is still in flight: no node can then count it as a
 *    voter before re-adding it, campaign again in a term in which it voted before it
 *    forgot, or confuse it with its old self.
 * After healing every node restarts except wiped ones, so every current voter is up and
 * connected; the liveness phase needs only them.
 *
 * Every change goes through the leader and is retried (NOT_LEADER, CONF_CHANGE_PENDING,
 * TRANSFER_IN_PROGRESS, a proposal lost with its leader) until the leader's membership
 * shows it.
 */

export interface MembershipChurnOptions {
  /** Voters never drop below this. */
  readonly votersMin: number;
  /** Churn tasks at once. */
  readonly tasksMax: number;
  /** Probability that a task targets the leader itself (it then steps down). */
  readonly leaderTargetRate: number;
  /** Probability that a task is a demotion rather than a removal with a wipe. */
  readonly demoteRate: number;
  /** How often a task checks whether it can take its next step. */
  readonly pollMs: number;
  /** Pause before proposing again after a refusal. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** An accepted proposal not in effect by then is proposed again. */
  readonly proposalWaitMs: number;
  /** A removed node keeps running (with its stale state) this long before its wipe. */
  readonly removedRunningMaxMs: number;
  /** A wiped node stays down at least this long. */
  readonly wipedMinMs: number;
  readonly wipedMaxMs: number;
  /** A learner (demoted, or rejoined) stays a learner at least this long. */
  readonly learnerMinMs: number;
  readonly learnerMaxMs: number;
}

export function defaultMembershipChurnOptions(options: { nodes: number }): MembershipChurnOptions {
  const votersMin = Math.min(options.nodes, Math.max(2, Math.floor(options.nodes / 2) + 1));
  return {
    votersMin,
    tasksMax: Math.max(0, options.nodes - votersMin),
    leaderTargetRate: 0.3,
    demoteRate: 0.35,
    pollMs: 50,
    retryMinMs: 20,
    retryMaxMs: 150,
    proposalWaitMs: 1_000,
    removedRunningMaxMs: 1_000,
    wipedMinMs: 100,
    wipedMaxMs: 1_500,
    learnerMinMs: 0,
    learnerMaxMs: 1_500,
  };
}

interface Task {
  readonly id: number;
  readonly kind: 'rejoin' | 'demote';
  readonly node: number;
}

export class MembershipChurn {
  readonly #cluster: Cluster;
  readonly #rng: Rng;
  readonly #options: MembershipChurnOptions;
  readonly #record: (what: string) => void;
  readonly #after: (afterMs: number, label: string, run: () => void) => void;
  /** Nodes the crash nemesis holds down: not to be wiped until it restarts them. */
  readonly #crashed: ReadonlySet<number>;
  readonly #tasks = new Map<number, Task>();
  /** Wiped nodes waiting to rejoin: down, and left alone by everyone else. */
  readonly #wiped = new Set<number>();
  #nextTaskId = 1;

  constructor(options: {
    cluster: Cluster;
    rng: Rng;
    churn: MembershipChurnOptions;
    record: (what: string) => void;
    after: (afterMs: number, label: string, run: () => void) => void;
    crashed: ReadonlySet<number>;
  }) {
    const o = options.churn;
    if (!Number.isSafeInteger(o.votersMin) || o.votersMin < 1) {
      throw new RangeError('MembershipChurn: votersMin must be a positive integer');
    }
    if (o.pollMs <= 0 || o.retryMaxMs < o.retryMinMs || o.retryMinMs <= 0) {
      throw new RangeError('MembershipChurn: bad poll or retry times');
    }
    this.#cluster = options.cluster;
    this.#rng = options.rng;
    this.#options = o;
    this.#record = options.record;
    this.#after = options.after;
    this.#crashed = options.crashed;
  }

  /** Whether a churn task is under way or a wiped node waits to rejoin. */
  get busy(): boolean {
    return this.#tasks.size > 0 || this.#wiped.size > 0;
  }

  /** Wiped nodes not yet rejoined: they stay down, even when the cluster heals. */
  get wiped(): ReadonlySet<number> {
    return this.#wiped;
  }

  /** Nodes some task is walking out of the voters and back. */
  busyNodes(): number[] {
    return [...this.#tasks.values()].map((task) => task.node);
  }

  /** Start a churn task if the rules allow one now. Returns whether one started. */
  start(): boolean {
    const o = this.#options;
    const cluster = this.#cluster;
    const members = cluster.members();
    const leader = cluster.leaderOf();
    if (members === null || leader === null || this.#tasks.size >= o.tasksMax) return false;
    if (members.voters.length - 1 < o.votersMin) return false;
    const busy = new Set(this.busyNodes());
    const candidates = members.voters.filter((v) => !busy.has(v));
    if (candidates.length === 0) return false;
    const rejoinBusy = [...this.#tasks.values()].some((task) => task.kind === 'rejoin');
    const kind = rejoinBusy || this.#rng.chance(o.demoteRate) ? 'demote' : 'rejoin';
    const node =
      candidates.includes(leader) && this.#rng.chance(o.leaderTargetRate)
        ? leader
        : this.#rng.pick(candidates);
    const task: Task = { id: this.#nextTaskId++, kind, node };
    this.#tasks.set(task.id, task);
    this.#record(
      `membership ${kind === 'rejoin' ? 'remove-wipe-rejoin' : 'demote-promote'} n${node}${node === leader ? ' (leader)' : ''}: start`,
    );
    if (kind === 'rejoin') this.#removeAndRejoin(task);
    else this.#demoteAndPromote(task);
    return true;
  }

  // ---- tasks

  #removeAndRejoin(task: Task): void {
    const v = task.node;
    this.#change(task, { type: 'removeNode', node: v }, () => {
      // Conservative: the removal entry is at or below what the leader has applied now.
      const removalIndex = this.#leaderApplied();
      this.#record(`membership n${v} removed (leader applied ${removalIndex})`);
      this.#wait(task, this.#rng.intBetween({ min: 0, max: this.#options.removedRunningMaxMs }), () =>
        this.#until(
          task,
          () => !this.#crashed.has(v),
          () => this.#wipe(task, removalIndex),
        ),
      );
    });
  }

  #wipe(task: Task, removalIndex: number): void {
    const cluster = this.#cluster;
    const v = task.node;
    const node = cluster.node(v);
    // The highest term the node may have voted in: its durable term (votes leave only after persisting).
    const termAtWipe = Math.max(node.disk.storage.initialState().hardState.term, node.term());
    cluster.wipe(v);
    this.#wiped.add(v);
    this.#record(`membership wipe n${v} (term ${termAtWipe})`);
    const o = this.#options;
    this.#wait(task, this.#rng.intBetween({ min: o.wipedMinMs, max: o.wipedMaxMs }), () =>
      this.#until(
        task,
        () => this.#rejoinSafe({ node: v, removalIndex, termAtWipe }),
        () => {
          this.#wiped.delete(v);
          cluster.rejoin(v);
          this.#record(`membership rejoin n${v} empty`);
          this.#change(task, { type: 'addLearner', node: v }, () => this.#promoteWhenCaughtUp(task));
        },
      ),
    );
  }

  #demoteAndPromote(task: Task): void {
    this.#change(task, { type: 'addLearner', node: task.node }, () => {
      this.#record(`membership n${task.node} demoted to learner`);
      this.#promoteWhenCaughtUp(task);
    });
  }

  #promoteWhenCaughtUp(task: Task): void {
    const o = this.#options;
    this.#wait(task, this.#rng.intBetween({ min: o.learnerMinMs, max: o.learnerMaxMs }), () =>
      this.#until(
        task,
        () => this.#caughtUp(task.node),
        () =>
          this.#change(task, { type: 'addVoter', node: task.node }, () => {
            this.#record(`membership n${task.node} voter again: done`);
            this.#tasks.delete(task.id);
          }),
      ),
    );
  }

  // ---- steps

  /**
   * Drive the leader's membership to show `change`, then run `next`. Proposes through the
   * leader, retrying after refusals and re-proposing a proposal that never took effect.
   * A removal or demotion that would break the voters floor drops the task instead.
   */
  #change(task: Task, change: MembershipChange, next: () => void): void {
    const cluster = this.#cluster;
    const o = this.#options;
    const attempt = (): void => {
      const members = cluster.members();
      if (members !== null && membershipShows(members, change)) {
        next();
        return;
      }
      if (members !== null && this.#breaksFloor(members, change)) {
        this.#record(`membership ${change.type} n${change.node}: dropped, voters at the floor`);
        this.#tasks.delete(task.id);
        return;
      }
      const result = cluster.proposeConfChange(change);
      if (!result.ok) {
        this.#after(this.#retryMs(), `membership retry ${change.type} n${change.node}`, attempt);
        return;
      }
      const deadlineMs = cluster.nowMs + o.proposalWaitMs;
      const poll = (): void => {
        const now = cluster.members();
        if (now !== null && membershipShows(now, change)) next();
        else if (cluster.nowMs >= deadlineMs) attempt();
        else this.#after(o.pollMs, `membership wait ${change.type} n${change.node}`, poll);
      };
      this.#after(o.pollMs, `membership wait ${change.type} n${change.node}`, poll);
    };
    attempt();
  }

  #until(task: Task, condition: () => boolean, next: () => void): void {
    const poll = (): void => {
      if (condition()) next();
      else this.#after(this.#options.pollMs, `membership poll n${task.node}`, poll);
    };
    poll();
  }

  #wait(task: Task, afterMs: number, next: () => void): void {
    this.#after(afterMs, `membership n${task.node}`, next);
  }

  // ---- conditions

  #breaksFloor(members: Members, change: MembershipChange): boolean {
    if (change.type === 'addVoter' || !members.voters.includes(change.node)) return false;
    return members.voters.length - 1 < this.#options.votersMin;
  }

  /**
   * Rule 4: every other node with a disk durably knows the removal, has reached the wiped
   * node's term and, if it runs, has applied a membership without it; and no message
   * between the wiped node's old incarnation and anyone is still in flight (a long-delayed
   * heartbeat would carry a commit index the new, empty node does not hold, and an old
   * acknowledgement would tell a leader that the new node holds entries it does not).
   */
  #rejoinSafe(options: { node: number; removalIndex: number; termAtWipe: number }): boolean {
    const cluster = this.#cluster;
    const v = options.node;
    for (let j = 0; j < cluster.nodeCount; j++) {
      if (j === v) continue;
      if (cluster.network.inFlight({ from: j, to: v }) > 0) return false;
      if (cluster.network.inFlight({ from: v, to: j }) > 0) return false;
      const other = cluster.node(j);
      // Another wiped node that is down votes for no one; it waits for its own turn.
      if (!other.alive && other.disk.empty) continue;
      const { hardState } = other.disk.storage.initialState();
      if (hardState.commit < options.removalIndex || hardState.term < options.termAtWipe) return false;
      const own = cluster.membersOf(j);
      if (own !== null && (own.voters.includes(v) || own.learners.includes(v))) return false;
    }
    return true;
  }

  /** The node runs and the leader sees it holding everything the leader has committed. */
  #caughtUp(node: number): boolean {
    const cluster = this.#cluster;
    const leader = cluster.leaderOf();
    if (leader === null || !cluster.isAlive(node)) return false;
    const progress = cluster.progressOf(node);
    return progress !== null && progress.match >= cluster.node(leader).commitIndex();
  }

  #leaderApplied(): number {
    const leader = this.#cluster.leaderOf();
    return leader === null ? 0 : (this.#cluster.node(leader).status()?.applied ?? 0);
  }

  #retryMs(): number {
    const o = this.#options;
    return this.#rng.intBetween({ min: o.retryMinMs, max: o.retryMaxMs });
  }
}
