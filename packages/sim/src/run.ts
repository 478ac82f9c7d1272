import { SafetyViolation } from './checkers.js';
import { Cluster, type ClusterOptions, type ClusterStats, type StorageMode } from './cluster.js';
import {
  defaultFaultScheduleOptions,
  type FaultKind,
  FaultSchedule,
  type FaultScheduleOptions,
} from './faults.js';
import { checkLinearizable, kvModel } from './linearizability/index.js';
import { Rng } from './rng.js';
import { Workload, type WorkloadOptions, type WorkloadStats } from './workload.js';

/**
 * One seeded run: clients and the fault schedule run together for the faults phase; then
 * faults stop and everything heals, and within the liveness bound a leader must be
 * elected, every outstanding client operation must complete and a probe write must reach
 * every node. Finally the safety sweep and the linearizability check judge the run.
 */

export interface RunOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultKind[];
  /** The nodes' storage: the in-memory model (default) or the real WAL over a faulty disk. */
  readonly storage?: StorageMode;
  /** Virtual time with clients and faults running. */
  readonly faultPhaseMs?: number;
  /** After healing, the cluster must be fully live again within this much virtual time. */
  readonly livenessBoundMs?: number;
  readonly workload?: Partial<WorkloadOptions>;
  readonly schedule?: Partial<FaultScheduleOptions>;
  /** Cluster settings; by default some (snapshot policy) are drawn from the seed. */
  readonly cluster?: Partial<Omit<ClusterOptions, 'seed' | 'nodes'>>;
  readonly keepTrace?: boolean;
  /** The linearizability search's step budget; past it the verdict is 'unknown'. */
  readonly linearizabilityStepsMax?: number;
}

export const runDefaults = {
  faultPhaseMs: 8_000,
  livenessBoundMs: 10_000,
  linearizabilityStepsMax: 5_000_000,
  /** Clocks may drift this much either way: within the core's lease margin (2 of 10 ticks). */
  clockSkewMax: 0.04,
} as const;

export type RunFailure =
  | { readonly kind: 'safety'; readonly check: string; readonly message: string }
  | { readonly kind: 'liveness'; readonly message: string }
  | { readonly kind: 'linearizability'; readonly message: string }
  /** An exception from the core (a broken invariant) or from the simulator itself. */
  | { readonly kind: 'error'; readonly message: string };

export interface RunResult {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultKind[];
  readonly ok: boolean;
  readonly failure: RunFailure | null;
  readonly linearizability: 'ok' | 'illegal' | 'unknown' | 'skipped';
  /** Why the linearizability verdict is unknown, when it is. */
  readonly linearizabilityNote: string | null;
  /** Virtual time from healing to full liveness, or null when not reached. */
  readonly recoveryMs: number | null;
  readonly traceHash: string;
  readonly traceLines: readonly string[];
  readonly stats: ClusterStats;
  readonly workload: Readonly<WorkloadStats>;
  readonly faultLog: readonly string[];
  readonly leaderTerms: number;
}

export function runSeed(options: RunOptions): RunResult {
  const { seed, nodes, faults } = options;
  const faultPhaseMs = options.faultPhaseMs ?? runDefaults.faultPhaseMs;
  const livenessBoundMs = options.livenessBoundMs ?? runDefaults.livenessBoundMs;
  // Draw the snapshot policy from the seed, so the suite covers eager and lazy compaction.
  const config = Rng.fork({ seed, label: 'run-config' });
  const cluster = Cluster.create({
    seed,
    nodes,
    clockSkewMax: runDefaults.clockSkewMax,
    snapshotThresholdEntries: config.pick([8, 20, 50]),
    snapshotTrailingEntries: config.pick([0, 3, 10]),
    keepTrace: options.keepTrace ?? false,
    ...(options.storage === undefined ? {} : { storage: options.storage }),
    ...options.cluster,
  });
  const workload = new Workload({
    cluster,
    seed,
    ...(options.workload ? { workload: options.workload } : {}),
  });
  const schedule = new FaultSchedule({
    cluster,
    seed,
    schedule: { ...defaultFaultScheduleOptions({ nodes, kinds: faults }), ...options.schedule },
  });

  let failure: RunFailure | null = null;
  let linearizability: RunResult['linearizability'] = 'skipped';
  let linearizabilityNote: string | null = null;
  let recoveryMs: number | null = null;
  try {
    cluster.note(`run seed ${seed} nodes ${nodes} faults ${faults.join(',') || 'none'}`);
    workload.start();
    schedule.start();
    cluster.advance(faultPhaseMs);

    cluster.note('liveness phase');
    schedule.stopAndHeal();
    workload.stop();
    workload.drain();
    const healedAtMs = cluster.nowMs;
    const deadlineMs = healedAtMs + livenessBoundMs;
    // A leader among the current voters (a leader always is one of its own membership).
    const leaderAmongVoters = (): boolean => {
      const leader = cluster.leaderOf();
      return leader !== null && (cluster.members()?.voters.includes(leader) ?? false);
    };
    const settled = cluster.runUntil(() => leaderAmongVoters() && workload.pendingCount === 0, {
      timeoutMs: livenessBoundMs,
    });
    if (!settled) {
      failure = {
        kind: 'liveness',
        message: !leaderAmongVoters()
          ? `no leader within ${livenessBoundMs}ms of healing; ${describeNodes(cluster)}`
          : `${workload.pendingCount} client operations still pending ${livenessBoundMs}ms after healing: ` +
            workload.describePending().join('; '),
      };
    } else {
      try {
        // Every current member (voters and learners) must apply it; a node outside the
        // membership (removed, or wiped and not rejoined) need not.
        cluster.one({ op: 'put', key: 'liveness-probe', value: String(seed) }, 'members', {
          timeoutMs: Math.max(1, deadlineMs - cluster.nowMs),
        });
        recoveryMs = cluster.nowMs - healedAtMs;
      } catch (error) {
        if (error instanceof SafetyViolation) throw error;
        failure = {
          kind: 'liveness',
          message:
            `a probe write did not reach every member within ${livenessBoundMs}ms of healing; ` +
            describeNodes(cluster),
        };
      }
    }
    cluster.checkAll();

    if (failure === null) {
      const verdict = checkLinearizable(kvModel, workload.history(), {
        stepsMax: options.linearizabilityStepsMax ?? runDefaults.linearizabilityStepsMax,
      });
      linearizability = verdict.result;
      if (verdict.result === 'illegal') {
        failure = {
          kind: 'linearizability',
          message: `history not linearizable (partition ${verdict.partition}): ${verdict.explanation}`,
        };
      } else if (verdict.result === 'unknown') {
        linearizabilityNote = verdict.reason;
      }
    }
  } catch (error) {
    if (error instanceof SafetyViolation) {
      failure = { kind: 'safety', check: error.check, message: error.message };
    } else {
      failure = { kind: 'error', message: describeError(error) };
    }
  }
  return {
    seed,
    nodes,
    faults,
    ok: failure === null,
    failure,
    linearizability,
    linearizabilityNote,
    recoveryMs,
    traceHash: cluster.traceHash(),
    traceLines: cluster.traceLines(),
    stats: cluster.stats(),
    workload: workload.stats(),
    faultLog: schedule.log(),
    leaderTerms: cluster.checkers.leadersByTerm.size,
  };
}

/** One clause per node, and the membership: enough to see who is stuck where. */
function describeNodes(cluster: Cluster): string {
  const members = cluster.members();
  const parts: string[] = [
    members === null
      ? 'no leader'
      : `voters ${members.voters.join(',')} learners ${members.learners.join(',') || '-'}`,
  ];
  for (let i = 0; i < cluster.nodeCount; i++) {
    const node = cluster.node(i);
    const storage = node.disk.storage;
    const conf = node.confState();
    const own = conf === null ? '' : ` conf ${conf.voters.join(',')}/${conf.learners.join(',')}`;
    const down = node.refused !== null ? 'down (refused)' : node.disk.empty ? 'down (wiped)' : 'down';
    parts.push(
      `n${i} ${node.alive ? (node.role ?? '?') : down}${own} term ${node.term()} commit ${node.commitIndex()} ` +
        `applied ${node.appliedIndex} log ${storage.firstIndex()}..${storage.lastIndex()}`,
    );
  }
  return parts.join('; ');
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const frames = (error.stack ?? '').split('\n').slice(1, 6).join('\n');
    return `${error.name}: ${error.message}\n${frames}`;
  }
  return String(error);
}
