import type { NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import { ConclaveError } from '../errors.js';
import { formatAddress } from '../transport/addresses.js';
import { errorMessage } from '../transport/shape.js';
import type { PeerIdentity } from '../transport/types.js';
import type { Address, AgentConfig, JoinTarget } from './config.js';
import type { MembershipHost } from './membership.js';
import type { JoinGroupResult, JoinReply, MemberInfo } from './membership-protocol.js';

export interface JoinLimits {
  /** Join requests sent before giving up. */
  readonly attemptsMax: number;
  /** Give up after this long in all. */
  readonly timeoutMs: number;
  /** The first delay between two attempts that made no progress; it doubles up to the max. */
  readonly retryDelayMinMs: number;
  readonly retryDelayMaxMs: number;
  /** One request's wait for its reply; longer than a member's forward timeout. */
  readonly requestTimeoutMs: number;
}

export const defaultJoinLimits: JoinLimits = {
  attemptsMax: 120,
  timeoutMs: 120_000,
  retryDelayMinMs: 100,
  retryDelayMaxMs: 2000,
  requestTimeoutMs: 5000,
};

/**
 * Whether a server with an empty log forms a new cluster (bootstraps every group) rather
 * than joining one: with `--dev`, or when `--bootstrap-expect N` names exactly N servers,
 * itself included, as `id@host:port`. Anything else with `--join` joins a running cluster.
 */
export function formsNewCluster(options: {
  config: Pick<AgentConfig, 'dev' | 'bootstrapExpect' | 'nodeId'>;
  peers: readonly { nodeId: NodeId }[];
}): boolean {
  const { config, peers } = options;
  if (config.dev) return true;
  if (config.bootstrapExpect === null) return false;
  const named = new Set([config.nodeId, ...peers.map((p) => p.nodeId)]);
  return named.size === config.bootstrapExpect;
}

/** Groups whose log names no member yet: this server has not received them (a join is under way). */
export function groupsAwaitingMembership(host: Pick<MembershipHost, 'groupCount' | 'group'>): number[] {
  const waiting: number[] = [];
  for (let groupId = 0; groupId < host.groupCount; groupId++) {
    const { voters, learners } = host.group(groupId).raw.status().confState;
    if (voters.length === 0 && learners.length === 0) waiting.push(groupId);
  }
  return waiting;
}

/**
 * Ask the cluster, through the `--join` targets in turn, to add this server to every group,
 * until every group's leader reports it a member (a learner: promotion follows once it has
 * caught up). A bare `host:port` target is identified first. Attempts that made no progress
 * back off with jitter; the whole is bounded by `attemptsMax` and `timeoutMs`, after which it
 * fails with JOIN_FAILED naming the last problem. Safe to run again after a restart.
 */
export async function joinCluster(options: {
  self: MemberInfo;
  targets: readonly JoinTarget[];
  groupCount: number;
  identify(address: Address): Promise<PeerIdentity>;
  requestJoin(request: {
    to: NodeId;
    member: MemberInfo;
    groupIds: readonly number[];
    timeoutMs: number;
  }): Promise<JoinReply>;
  logger: Logger;
  limits?: Partial<JoinLimits>;
  signal?: AbortSignal;
  /** Jitter source in [0, 1); tests pass a fixed one. */
  random?: () => number;
}): Promise<{ attempts: number }> {
  const { self, targets, logger } = options;
  const limits = { ...defaultJoinLimits, ...options.limits };
  const random = options.random ?? Math.random;
  if (targets.length === 0) throw joinFailed('no --join address to join through');
  const started = Date.now();
  const deadline = started + limits.timeoutMs;
  const waiting = new Set(Array.from({ length: options.groupCount }, (_, g) => g));
  let stepMs = limits.retryDelayMinMs;
  let lastProblem = 'no attempt was made';
  let attempts = 0;
  while (attempts < limits.attemptsMax && Date.now() < deadline) {
    if (options.signal?.aborted === true) throw stopping();
    const target = targets[attempts % targets.length] ?? targets[0];
    attempts++;
    if (target === undefined) break;
    let progressed = false;
    try {
      const to = target.nodeId ?? (await options.identify(target.raft)).nodeId;
      const reply = await options.requestJoin({
        to,
        member: self,
        groupIds: [...waiting],
        timeoutMs: Math.max(1, Math.min(limits.requestTimeoutMs, deadline - Date.now())),
      });
      if (reply.groupCount !== options.groupCount) {
        throw joinFailed(
          `node ${to} runs ${reply.groupCount} groups and this server ${options.groupCount}; start it with --groups ${reply.groupCount}`,
        );
      }
      for (const result of reply.results) {
        if (result.status === 'refused') {
          throw joinFailed(
            `node ${result.leaderId ?? to} refused to add ${self.nodeId} to group ${result.groupId}: ${result.detail ?? ''}`,
          );
        }
        if (result.status === 'member') waiting.delete(result.groupId);
        progressed ||=
          result.status === 'member' || result.status === 'proposed' || result.status === 'pending';
      }
      if (waiting.size === 0) {
        logger.info(
          { attempts, elapsedMs: Date.now() - started, via: to },
          `joined the cluster: every group lists ${self.nodeId}; catching up as a learner`,
        );
        return { attempts };
      }
      lastProblem = describeWaiting(
        reply.results.filter((r) => waiting.has(r.groupId)),
        waiting.size,
      );
    } catch (error) {
      if (error instanceof ConclaveError && error.code === 'JOIN_FAILED') throw error;
      lastProblem = `${describeTarget(target)}: ${errorMessage(error)}`;
    }
    logger.debug({ attempts, waiting: waiting.size, problem: lastProblem }, 'join attempt incomplete');
    // After progress, ask again soon (a proposed change applies within a few ticks).
    const delayMs = progressed ? limits.retryDelayMinMs : stepMs / 2 + random() * (stepMs / 2);
    if (!progressed) stepMs = Math.min(limits.retryDelayMaxMs, stepMs * 2);
    await pause(Math.min(delayMs, Math.max(0, deadline - Date.now())), options.signal);
  }
  throw joinFailed(
    `could not join through ${targets.map(describeTarget).join(', ')} after ${attempts} attempts in ` +
      `${Date.now() - started} ms; last: ${lastProblem}` +
      ' (to form a new cluster instead, --bootstrap-expect N must equal the number of servers named as id@host:port, this one included)',
  );
}

function describeTarget(target: JoinTarget): string {
  const address = formatAddress(target.raft);
  return target.nodeId === null ? address : `${target.nodeId}@${address}`;
}

function describeWaiting(results: readonly JoinGroupResult[], waiting: number): string {
  const sample = results
    .slice(0, 3)
    .map((r) => `group ${r.groupId} ${r.status}${r.detail === null ? '' : ` (${r.detail})`}`)
    .join('; ');
  return `${waiting} groups do not list this server yet: ${sample}`;
}

function joinFailed(message: string): ConclaveError {
  return new ConclaveError({ code: 'JOIN_FAILED', message });
}

function stopping(): ConclaveError {
  return new ConclaveError({ code: 'SHUTTING_DOWN', message: 'the server stopped while joining' });
}

/** Wait `ms`, or less if `signal` aborts (the loop then stops at its next check). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
