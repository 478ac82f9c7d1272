import type { NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import { ConclaveError } from '../errors.js';
import { formatAddress } from '../transport/addresses.js';
import { errorMessage } from '../transport/shape.js';
import type { Address, JoinTarget } from './config.js';

/**
 * Forming a cluster from a plain address list, the way Consul servers do: every server is
 * started with the same `--bootstrap-expect N --join a:8300,b:8300,c:8300` (addresses or DNS
 * names, the list may include the server itself), learns the others' ids by asking each
 * address who listens there, and then decides by one rule that every server applies alike:
 *
 * - wait until every `--join` target has answered (an `id@host:port` target names itself);
 * - the servers known are this one plus every distinct id the targets named;
 * - exactly N known: bootstrap every group with those N as voters. Every server of the list
 *   knows the same N, so they all bootstrap the same voter set: one cluster;
 * - more than N: the list reaches beyond the servers that form a cluster (a server added
 *   later with the same flags), so join the running cluster instead, as a learner;
 * - fewer than N: the list can never make N; refuse to start.
 *
 * Waiting for every target, not for any N of them, is what rules out two clusters: a server
 * that decided on a subset could pick voters that another server, seeing another subset,
 * does not. The price: every listed server must be up before any bootstraps.
 */

export interface DiscoveryLimits {
  /** The first delay between two rounds that left a target unanswered; it doubles up to the max. */
  readonly retryDelayMinMs: number;
  readonly retryDelayMaxMs: number;
  /** Give up (and exit) when the listed servers have not all answered by then. */
  readonly timeoutMs: number;
  /** Say which targets are still silent at most this often. */
  readonly progressLogIntervalMs: number;
}

export const defaultDiscoveryLimits: DiscoveryLimits = {
  retryDelayMinMs: 100,
  retryDelayMaxMs: 2_000,
  // Pods of a StatefulSet may be scheduled minutes apart; past this the process exits
  // non-zero and its supervisor restarts it, which logs the problem again.
  timeoutMs: 15 * 60_000,
  progressLogIntervalMs: 10_000,
};

export type DiscoveryOutcome =
  | { readonly kind: 'bootstrap'; readonly voters: readonly NodeId[] }
  | { readonly kind: 'join'; readonly known: readonly NodeId[] };

/** Who answered at one address: its id, and whether it is this very process. */
export interface Answer {
  readonly nodeId: NodeId;
  readonly self: boolean;
}

export async function discoverCluster(options: {
  selfId: NodeId;
  bootstrapExpect: number;
  targets: readonly JoinTarget[];
  /** Ask the server at `address` who it is; rejects when nobody answers. Resolves DNS each time. */
  identify(address: Address): Promise<Answer>;
  logger: Logger;
  limits?: Partial<DiscoveryLimits>;
  signal?: AbortSignal;
  /** Jitter in [0, 1) and the clock: tests pass their own. */
  random?: () => number;
  now?: () => number;
  delay?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}): Promise<DiscoveryOutcome> {
  const limits = { ...defaultDiscoveryLimits, ...options.limits };
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const delay = options.delay ?? abortableDelay;
  const { selfId, bootstrapExpect, logger } = options;
  /** What each target (by its index in the list) turned out to be. */
  const answered = new Map<number, NodeId>();
  options.targets.forEach((target, i) => {
    if (target.nodeId !== null) answered.set(i, target.nodeId);
  });
  const problems = new Map<number, string>();
  const deadline = now() + limits.timeoutMs;
  let nextProgressLog = now() + limits.progressLogIntervalMs;
  let stepMs = limits.retryDelayMinMs;
  for (;;) {
    if (options.signal?.aborted === true) throw stopping();
    await askSilentTargets({
      targets: options.targets,
      answered,
      problems,
      selfId,
      identify: options.identify,
    });
    if (answered.size === options.targets.length) {
      return decide({ selfId, bootstrapExpect, ids: [...answered.values()], logger });
    }
    const silent = describeSilent({ targets: options.targets, answered, problems });
    if (now() >= deadline) {
      throw new ConclaveError({
        code: 'JOIN_FAILED',
        message: `forming the cluster: ${options.targets.length - answered.size} of ${options.targets.length} --join servers never answered within ${limits.timeoutMs} ms (${silent})`,
      });
    }
    if (now() >= nextProgressLog) {
      nextProgressLog = now() + limits.progressLogIntervalMs;
      logger.info(
        { answered: answered.size, targets: options.targets.length, bootstrapExpect },
        `forming the cluster: waiting for ${options.targets.length - answered.size} of ${options.targets.length} --join servers to answer (${silent})`,
      );
    }
    // Full jitter: servers started together do not retry in lockstep.
    await delay(Math.max(1, Math.round(stepMs * (0.5 + random() / 2))), options.signal);
    stepMs = Math.min(limits.retryDelayMaxMs, stepMs * 2);
  }
}

/** One round: ask every target that has not answered yet, all at once. */
async function askSilentTargets(options: {
  targets: readonly JoinTarget[];
  answered: Map<number, NodeId>;
  problems: Map<number, string>;
  selfId: NodeId;
  identify(address: Address): Promise<Answer>;
}): Promise<void> {
  const { targets, answered, problems, selfId } = options;
  await Promise.all(
    targets.map(async (target, i) => {
      if (answered.has(i)) return;
      try {
        const answer = await options.identify(target.raft);
        // Our own answer names our id; a server that merely shares it is refused by the
        // transport (duplicateNodeId), so an answer naming selfId is us.
        answered.set(i, answer.self ? selfId : answer.nodeId);
        problems.delete(i);
      } catch (error) {
        problems.set(i, errorMessage(error));
      }
    }),
  );
}

function decide(options: {
  selfId: NodeId;
  bootstrapExpect: number;
  ids: readonly NodeId[];
  logger: Logger;
}): DiscoveryOutcome {
  const { selfId, bootstrapExpect, logger } = options;
  const known = [...new Set([selfId, ...options.ids])].sort();
  if (known.length === bootstrapExpect) {
    logger.info(
      { voters: known },
      `forming the cluster: all ${known.length} servers answered; bootstrapping`,
    );
    return { kind: 'bootstrap', voters: known };
  }
  if (known.length > bootstrapExpect) {
    logger.info(
      { known, bootstrapExpect },
      `forming the cluster: ${known.length} servers answered, more than --bootstrap-expect ${bootstrapExpect}; joining the running cluster instead of bootstrapping`,
    );
    return { kind: 'join', known };
  }
  throw new ConclaveError({
    code: 'CONFIG_INVALID',
    message: `--bootstrap-expect ${bootstrapExpect} but --join reaches only ${known.length} servers, this one included (${known.join(', ')}): list every server in --join`,
  });
}

function describeSilent(options: {
  targets: readonly JoinTarget[];
  answered: ReadonlyMap<number, NodeId>;
  problems: ReadonlyMap<number, string>;
}): string {
  const silent: string[] = [];
  options.targets.forEach((target, i) => {
    if (options.answered.has(i)) return;
    silent.push(`${formatAddress(target.raft)}: ${options.problems.get(i) ?? 'not asked yet'}`);
  });
  return silent.join('; ');
}

function stopping(): ConclaveError {
  return new ConclaveError({ code: 'SHUTTING_DOWN', message: 'the agent stopped while forming the cluster' });
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(stopping());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(stopping());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
