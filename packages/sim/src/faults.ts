import type { Cluster } from './cluster.js';
import { defaultMembershipChurnOptions, MembershipChurn, type MembershipChurnOptions } from './membership.js';
import { type NetworkConditions, reliableConditions } from './network.js';
import { Rng } from './rng.js';

/**
 * A seeded fault schedule (a "nemesis"). During storm windows it injects a fault every
 * so often, each undone after a random duration; calm windows let the cluster recover
 * between storms. Every choice comes from the run's seed, so a schedule replays exactly.
 */

export const FaultKind = {
  /** Message loss (0-30%), duplication, jitter and long delays. */
  Net: 'net',
  /** Link shapes: partitions, minority/majority splits, isolation, one-way cuts, rings, bridges. */
  Partition: 'partition',
  /** Crash a node (often the leader) and restart it later. */
  Crash: 'crash',
  /** Crash a node in the middle of a disk write, leaving a torn tail. */
  Torn: 'torn',
  /** Ask the leader to hand leadership to a voter: often a lagging or cut-off one, so some transfers abort. */
  Transfer: 'transfer',
  /** Membership churn: remove a voter, wipe it, add it back empty as a learner, promote it; demote and promote. */
  Membership: 'membership',
  /** wal storage only: an fsync fails (EIO) on a node, which must stop; it restarts later. */
  Fsync: 'fsync',
  /** wal storage only: bit rot on one down node (never a majority), which must then refuse to start. */
  Bitflip: 'bitflip',
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

/** Kinds that need the real storage code (`--storage wal`). */
export const walOnlyFaultKinds: readonly FaultKind[] = [FaultKind.Fsync, FaultKind.Bitflip];

/** What `all` means with the in-memory disk model (unchanged, so old seeds replay). */
export const allFaultKinds: readonly FaultKind[] = Object.values(FaultKind).filter(
  (k) => !walOnlyFaultKinds.includes(k),
);

/** What `all` means with `--storage wal`. */
export const allWalFaultKinds: readonly FaultKind[] = Object.values(FaultKind);

/** Parse the CLI's --faults value: all, none, or a comma-separated list of kinds. */
export function parseFaultKinds(text: string, options: { storage?: 'memory' | 'wal' } = {}): FaultKind[] {
  const wal = options.storage === 'wal';
  const known = wal ? allWalFaultKinds : allFaultKinds;
  if (text === 'all') return [...known];
  if (text === 'none' || text === '') return [];
  const kinds: FaultKind[] = [];
  for (const part of text.split(',')) {
    const kind = allWalFaultKinds.find((k) => k === part.trim());
    if (kind === undefined) {
      throw new RangeError(
        `unknown fault kind '${part}'; expected all, none or ${allWalFaultKinds.join(', ')}`,
      );
    }
    if (!known.includes(kind)) throw new RangeError(`fault kind '${kind}' needs --storage wal`);
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

export interface FaultScheduleOptions {
  readonly kinds: readonly FaultKind[];
  /** Time between two faults within a storm. */
  readonly gapMinMs: number;
  readonly gapMaxMs: number;
  /** How long a fault lasts before it is undone. */
  readonly durationMinMs: number;
  readonly durationMaxMs: number;
  /** Lengths of the alternating storm and calm windows. */
  readonly stormMinMs: number;
  readonly stormMaxMs: number;
  readonly calmMinMs: number;
  readonly calmMaxMs: number;
  /** Nodes down at once; more than a minority stalls the cluster, which is allowed but rarer. */
  readonly crashedMax: number;
  /** Probability that a crash or isolation targets the current leader when there is one. */
  readonly leaderTargetRate: number;
  /** The largest message loss rate a net fault sets. */
  readonly dropRateMax: number;
  /** Long delays reach up to this many election timeouts. */
  readonly longDelayElectionTimeouts: number;
  /** The membership churn's rules and pacing (see membership.ts); defaults for the cluster's size. */
  readonly membership?: MembershipChurnOptions;
}

export function defaultFaultScheduleOptions(options: {
  nodes: number;
  kinds: readonly FaultKind[];
}): FaultScheduleOptions {
  return {
    kinds: options.kinds,
    gapMinMs: 50,
    gapMaxMs: 600,
    durationMinMs: 100,
    durationMaxMs: 1_500,
    stormMinMs: 1_000,
    stormMaxMs: 4_000,
    calmMinMs: 200,
    calmMaxMs: 1_500,
    crashedMax: Math.floor((options.nodes - 1) / 2),
    leaderTargetRate: 0.5,
    dropRateMax: 0.3,
    longDelayElectionTimeouts: 5,
    membership: defaultMembershipChurnOptions({ nodes: options.nodes }),
  };
}

export class FaultSchedule {
  readonly #cluster: Cluster;
  readonly #options: FaultScheduleOptions;
  readonly #rng: Rng;
  #running = false;
  #storm = false;
  /** Bumped by every new shape or conditions fault, so an old fault's undo does not undo a newer one. */
  #shapeEpoch = 0;
  #conditionsEpoch = 0;
  readonly #down = new Set<number>();
  /** Nodes damaged by a bitflip fault: down, and refusing to start, for the rest of the run. */
  readonly #refused = new Set<number>();
  /** Nodes with an fsync error armed that may not have fired yet. */
  readonly #syncFaultArmed = new Set<number>();
  readonly #log: string[] = [];
  readonly #churn: MembershipChurn;

  constructor(options: { cluster: Cluster; seed: number; schedule: FaultScheduleOptions }) {
    const o = options.schedule;
    if (o.gapMinMs <= 0 || o.gapMaxMs < o.gapMinMs || o.durationMaxMs < o.durationMinMs) {
      throw new RangeError('FaultSchedule: bad gap or duration range');
    }
    if (!(o.dropRateMax >= 0 && o.dropRateMax <= 1)) throw new RangeError('FaultSchedule: bad dropRateMax');
    this.#cluster = options.cluster;
    this.#options = o;
    this.#rng = Rng.fork({ seed: options.seed, label: 'faults' });
    this.#churn = new MembershipChurn({
      cluster: this.#cluster,
      // A stream of its own: churn steps draw as they go, interleaved with other faults.
      rng: Rng.fork({ seed: options.seed, label: 'faults/membership' }),
      churn: o.membership ?? defaultMembershipChurnOptions({ nodes: options.cluster.nodeCount }),
      record: (what) => this.#record(what),
      after: (afterMs, label, run) => this.#after(afterMs, label, run),
      crashed: this.#down,
    });
  }

  /** Wiped nodes waiting to rejoin: they stay down, even after stopAndHeal(). */
  get wiped(): ReadonlySet<number> {
    return this.#churn.wiped;
  }

  /** Faults injected so far, one line each ("t=1234 crash n2"). */
  log(): readonly string[] {
    return this.#log;
  }

  start(): void {
    if (this.#running || this.#options.kinds.length === 0) return;
    this.#running = true;
    this.#enterStorm();
  }

  /**
   * Inject nothing more and undo every fault now: the network heals, crashed nodes
   * restart. Membership stays as it is; a wiped node that has not rejoined stays down
   * (it is no member, and it may not be safe for it to vote yet).
   */
  stopAndHeal(): void {
    this.#running = false;
    const cluster = this.#cluster;
    cluster.cancelCrashesDuringWrite();
    cluster.heal();
    cluster.setNetworkConditions(reliableConditions);
    for (let i = 0; i < cluster.nodeCount; i++) {
      // A refused node is tried again, and refuses again: liveness does not need it.
      // So does a node whose armed fsync error has not fired: the restart disarms it.
      if (this.#churn.wiped.has(i)) continue;
      if (!cluster.isAlive(i) || this.#syncFaultArmed.has(i)) cluster.restart(i);
    }
    this.#down.clear();
    this.#syncFaultArmed.clear();
  }

  #enterStorm(): void {
    if (!this.#running) return;
    const o = this.#options;
    this.#storm = true;
    const stormMs = this.#rng.intBetween({ min: o.stormMinMs, max: o.stormMaxMs });
    this.#after(stormMs, 'calm', () => {
      this.#storm = false;
      this.#after(this.#rng.intBetween({ min: o.calmMinMs, max: o.calmMaxMs }), 'storm', () =>
        this.#enterStorm(),
      );
    });
    this.#scheduleFault();
  }

  #scheduleFault(): void {
    const o = this.#options;
    this.#after(this.#rng.intBetween({ min: o.gapMinMs, max: o.gapMaxMs }), 'fault', () => {
      if (!this.#storm) return;
      this.#inject();
      this.#scheduleFault();
    });
  }

  #inject(): void {
    const kind = this.#rng.pick(this.#options.kinds);
    switch (kind) {
      case 'net':
        this.#netFault();
        return;
      case 'partition':
        this.#partitionFault();
        return;
      case 'crash':
        this.#crashFault({ torn: false });
        return;
      case 'torn':
        this.#crashFault({ torn: true });
        return;
      case 'transfer':
        this.#transferFault();
        return;
      case 'membership':
        // A node that refused to start keeps its place in the membership; churning on top
        // of it could leave the voters without a live quorum, so churn stops for the run.
        if (this.#refused.size > 0) return;
        this.#churn.start();
        return;
      case 'fsync':
        this.#fsyncFault();
        return;
      case 'bitflip':
        this.#bitflipFault();
        return;
    }
  }

  /** An fsync fails soon on a running node; it stops by itself and is restarted later. */
  #fsyncFault(): void {
    const rng = this.#rng;
    const cluster = this.#cluster;
    const up = this.#upNodes();
    if (this.#down.size + this.#refused.size >= this.#options.crashedMax || up.length === 0) return;
    const target = rng.pick(up);
    const afterSyncs = rng.intBetween({ min: 0, max: 3 });
    this.#down.add(target);
    this.#syncFaultArmed.add(target);
    this.#record(`fsync error on n${target} after ${afterSyncs} syncs`);
    cluster.failSync(target, { afterSyncs });
    this.#after(this.#duration(), 'restart', () => {
      this.#down.delete(target);
      this.#syncFaultArmed.delete(target);
      // Restart whether or not the error fired: a crash clears a fault that never did.
      cluster.restart(target);
    });
  }

  /**
   * Bit rot on one node while it is down: it must refuse to start, and stays down for the
   * rest of the run. At most one such node, and only while no membership churn is under
   * way, so the others (all voters) always keep a live quorum.
   */
  #bitflipFault(): void {
    const rng = this.#rng;
    const cluster = this.#cluster;
    if (this.#refused.size > 0 || this.#churn.busy || cluster.nodeCount < 3) return;
    const up = this.#upNodes();
    if (this.#down.size >= this.#options.crashedMax || up.length === 0) return;
    const members = cluster.members();
    if (members === null || members.voters.length !== cluster.nodeCount) return;
    const target = rng.pick(up);
    const hit = cluster.bitflip(target, rng);
    this.#record(`bitflip n${target} ${hit ?? '(nothing to damage)'}`);
    if (hit === null) {
      this.#down.add(target);
      this.#after(this.#duration(), 'restart', () => {
        this.#down.delete(target);
        cluster.restart(target);
      });
      return;
    }
    this.#refused.add(target);
    this.#after(this.#duration(), 'restart', () => {
      cluster.restart(target);
      if (cluster.refused(target) === null) this.#refused.delete(target);
    });
  }

  #upNodes(): number[] {
    return Array.from({ length: this.#cluster.nodeCount }, (_, i) => i).filter(
      (i) => !this.#down.has(i) && !this.#churn.wiped.has(i) && !this.#refused.has(i),
    );
  }

  #netFault(): void {
    const o = this.#options;
    const rng = this.#rng;
    const cluster = this.#cluster;
    const electionTimeoutMs = cluster.electionTimeoutTicks * cluster.tickMs;
    const long = rng.chance(0.3);
    const conditions: NetworkConditions = {
      dropRate: round3(rng.floatBetween({ min: 0, max: o.dropRateMax })),
      duplicateRate: round3(rng.floatBetween({ min: 0, max: 0.1 })),
      jitterMs: rng.intBetween({ min: 0, max: 30 }),
      longDelayRate: long ? round3(rng.floatBetween({ min: 0.01, max: 0.1 })) : 0,
      longDelayMaxMs: long ? Math.round(o.longDelayElectionTimeouts * electionTimeoutMs) : 0,
    };
    const epoch = ++this.#conditionsEpoch;
    this.#record(
      `net drop ${conditions.dropRate} dup ${conditions.duplicateRate} jitter ${conditions.jitterMs}`,
    );
    cluster.setNetworkConditions(conditions);
    this.#after(this.#duration(), 'net undo', () => {
      if (epoch === this.#conditionsEpoch) cluster.setNetworkConditions(reliableConditions);
    });
  }

  #partitionFault(): void {
    const rng = this.#rng;
    const cluster = this.#cluster;
    const n = cluster.nodeCount;
    const nodes = Array.from({ length: n }, (_, i) => i);
    const leader = cluster.leaderOf();
    const shapes = ['splitLeader', 'splitRandom', 'isolate', 'oneWay', 'ring', 'bridge', 'groups'] as const;
    const shape = rng.pick(n >= 4 ? shapes : shapes.filter((s) => s !== 'ring' && s !== 'bridge'));
    const minoritySize = Math.floor((n - 1) / 2);
    switch (shape) {
      case 'splitLeader': {
        // The leader in the minority: the majority must elect a new leader, the old one must not commit.
        const first = leader ?? rng.nextInt(n);
        const rest = rng.shuffle(nodes.filter((i) => i !== first)).slice(0, Math.max(0, minoritySize - 1));
        this.#record(`split minority ${[first, ...rest].join(',')}`);
        cluster.split({ minority: [first, ...rest] });
        break;
      }
      case 'splitRandom': {
        const minority = rng
          .shuffle(nodes)
          .slice(0, rng.intBetween({ min: 1, max: Math.max(1, minoritySize) }));
        this.#record(`split minority ${minority.join(',')}`);
        cluster.split({ minority });
        break;
      }
      case 'isolate': {
        const target =
          leader !== null && rng.chance(this.#options.leaderTargetRate) ? leader : rng.nextInt(n);
        this.#record(`isolate n${target}`);
        cluster.isolate(target);
        break;
      }
      case 'oneWay': {
        const from = leader !== null && rng.chance(0.5) ? leader : rng.nextInt(n);
        const to = rng.pick(nodes.filter((i) => i !== from));
        this.#record(`cut n${from}>n${to}`);
        cluster.heal();
        cluster.cutLink({ from, to });
        break;
      }
      case 'ring': {
        const order = rng.shuffle(nodes);
        this.#record(`ring ${order.join(',')}`);
        cluster.ring({ order });
        break;
      }
      case 'bridge': {
        const order = rng.shuffle(nodes);
        const bridge = order[0] ?? 0;
        const others = order.slice(1);
        const cut = Math.ceil(others.length / 2);
        this.#record(`bridge n${bridge}`);
        cluster.bridge({ bridge, halves: [others.slice(0, cut), others.slice(cut)] });
        break;
      }
      case 'groups': {
        const shuffled = rng.shuffle(nodes);
        const groups: number[][] = [];
        while (shuffled.length > 0) groups.push(shuffled.splice(0, rng.intBetween({ min: 1, max: 3 })));
        this.#record(`partition ${groups.map((g) => g.join(',')).join('|')}`);
        cluster.partition(groups);
        break;
      }
    }
    const epoch = ++this.#shapeEpoch;
    this.#after(this.#duration(), 'partition undo', () => {
      if (epoch === this.#shapeEpoch) cluster.heal();
    });
  }

  #crashFault(options: { torn: boolean }): void {
    const rng = this.#rng;
    const cluster = this.#cluster;
    const o = this.#options;
    const up = Array.from({ length: cluster.nodeCount }, (_, i) => i).filter(
      (i) => !this.#down.has(i) && !this.#churn.wiped.has(i) && !this.#refused.has(i),
    );
    // Occasionally go past the minority bound: the cluster stalls, and must recover after.
    const limit = rng.chance(0.1) ? cluster.nodeCount : o.crashedMax;
    if (this.#down.size + this.#refused.size >= limit || up.length === 0) return;
    const leader = cluster.leaderOf();
    const target =
      leader !== null && up.includes(leader) && rng.chance(o.leaderTargetRate) ? leader : rng.pick(up);
    this.#down.add(target);
    if (options.torn) {
      this.#record(`crash n${target} during its next write`);
      cluster.crashDuringNextWrite(target);
    } else {
      this.#record(`crash n${target}`);
      cluster.crash(target);
    }
    this.#after(this.#duration(), 'restart', () => {
      this.#down.delete(target);
      // A torn-write crash that never found a write to tear becomes a plain restart.
      cluster.cancelCrashesDuringWrite({ node: target });
      cluster.restart(target);
    });
  }

  /**
   * Ask the leader to hand over to a voter: a random one; the most lagging one (the
   * transfer waits for it to catch up, and aborts after an election timeout if it does
   * not); one whose link from the leader is cut for a while (TimeoutNow never arrives,
   * so the transfer aborts); rarely a node that may not lead (refused).
   */
  #transferFault(): void {
    const rng = this.#rng;
    const cluster = this.#cluster;
    const leader = cluster.leaderOf();
    const members = cluster.members();
    if (leader === null || members === null) return;
    const voters = members.voters.filter((v) => v !== leader);
    const roll = rng.nextFloat();
    let target: number;
    let how: string;
    if (roll < 0.08 || voters.length === 0) {
      const others = Array.from({ length: cluster.nodeCount }, (_, i) => i).filter(
        (i) => !voters.includes(i),
      );
      target = rng.pick(others);
      how = 'not a voter';
    } else if (roll < 0.33) {
      let lowest = Number.POSITIVE_INFINITY;
      target = voters[0] ?? leader;
      for (const v of voters) {
        const match = cluster.progressOf(v)?.match ?? 0;
        if (match < lowest) {
          lowest = match;
          target = v;
        }
      }
      how = `most lagging, match ${lowest}`;
    } else if (roll < 0.5) {
      target = rng.pick(voters);
      how = 'link cut';
      const link = { from: leader, to: target };
      cluster.cutLink(link);
      const epoch = ++this.#shapeEpoch;
      const electionTimeoutMs = cluster.electionTimeoutTicks * cluster.tickMs;
      this.#after(
        rng.intBetween({ min: electionTimeoutMs, max: 3 * electionTimeoutMs }),
        'transfer undo',
        () => {
          // The newest shape's undo heals everything, as for partition faults.
          if (epoch === this.#shapeEpoch) cluster.heal();
        },
      );
    } else {
      target = rng.pick(voters);
      how = 'random voter';
    }
    const accepted = cluster.transferLeader({ from: leader, to: target });
    this.#record(`transfer n${leader}>n${target} (${how})${accepted ? '' : ' refused'}`);
  }

  #duration(): number {
    const o = this.#options;
    return this.#rng.intBetween({ min: o.durationMinMs, max: o.durationMaxMs });
  }

  #after(afterMs: number, label: string, run: () => void): void {
    this.#cluster.schedule({
      afterMs,
      label: `nemesis ${label}`,
      run: () => {
        if (this.#running) run();
      },
    });
  }

  #record(what: string): void {
    this.#log.push(`t=${this.#cluster.nowMs} ${what}`);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
