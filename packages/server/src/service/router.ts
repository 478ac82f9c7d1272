import { assert, RaftError, RaftErrorCode } from '@conclave/raft';
import { ConclaveError } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCall, GroupCaller, GroupReply } from './calls.js';
import { type Address, type ForwardClient, PeerUnreachableError } from './forward-client.js';
import type { LocalGroups } from './local.js';

/** Where servers answer HTTP and Raft. Learned from the transport's handshake. */
export interface PeerDirectory {
  httpAddress(nodeId: string): Address | null;
  raftAddress(nodeId: string): Address | null;
}

export interface RouterLimits {
  /** How long a call waits for its group to elect a leader before NO_LEADER (ms). */
  readonly leaderWaitMs: number;
  /**
   * Attempts to reach a group's leader when the one we knew has moved on, one tick apart,
   * within `leaderWaitMs`. A leadership transfer refuses writes until it completes, which may
   * take up to an election timeout (10 ticks) on a loaded server, so a few attempts are not
   * enough: a write sent during a handover between two live servers must not fail.
   */
  readonly attemptsMax: number;
}

export const defaultRouterLimits: RouterLimits = { leaderWaitMs: 7_000, attemptsMax: 64 };

/**
 * Sends each group call to the server that can answer it: this one when it leads the group
 * (or for a stale read it may serve), else the group's leader over HTTP. A stale leader
 * hint is retried a bounded number of times; a call with no leader waits a bounded time.
 */
export class GroupRouter implements GroupCaller {
  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      local: LocalGroups;
      peers: PeerDirectory;
      client: ForwardClient;
      tickMs: number;
      limits?: RouterLimits;
    },
  ) {}

  async call(options: {
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    const { groupId, call, signal } = options;
    const limits = this.options.limits ?? defaultRouterLimits;
    assert(
      call.kind !== 'snapshot-read' && call.kind !== 'snapshot-close',
      'a snapshot cursor call goes to the server holding the cursor (callServer), not to the leader',
    );
    // A stale snapshot is this server's own state: no leader needed.
    if (call.kind === 'snapshot-open' && call.stale) return this.options.local.call(options);
    if (call.kind === 'read' && call.read.consistency === 'stale') {
      const maxStaleMs = call.read.maxStaleMs;
      // Consul: a stale read past max_stale is retried as a leader read, not refused.
      if (maxStaleMs === null || this.options.local.lastContactMs(groupId) <= maxStaleMs) {
        return this.options.local.call(options);
      }
      return this.call({
        groupId,
        call: { ...call, read: { ...call.read, consistency: 'default' } },
        signal,
      });
    }
    const deadlineMs = Date.now() + limits.leaderWaitMs;
    let lastError: Error | null = null;
    let attempts = 0;
    for (; attempts < limits.attemptsMax && (attempts === 0 || Date.now() < deadlineMs); attempts++) {
      const leaderId = await this.awaitLeader({ groupId, deadlineMs, signal });
      try {
        if (leaderId === this.options.host.nodeId) return await this.options.local.call(options);
        const to = this.options.peers.httpAddress(leaderId);
        if (to === null) {
          throw new PeerUnreachableError(
            `the HTTP address of ${leaderId}, leader of group ${groupId}, is not known yet`,
          );
        }
        return await this.options.client.call({ to, groupId, call, signal });
      } catch (error) {
        // Only failures where the call certainly did not take effect are retried.
        if (!isRetryable(error)) throw error;
        lastError = error as Error;
        await delay(this.options.tickMs);
      }
    }
    throw new ConclaveError({
      code: 'NO_LEADER',
      message: `group ${groupId}: the leader moved ${attempts} times while forwarding (${lastError?.message ?? ''})`,
    });
  }

  /**
   * Sends a call to one named server, whoever leads the group: a snapshot cursor lives on the
   * server that opened it, which may have lost the leadership since. Not retried: a cursor
   * read moves the cursor on, so a read whose reply was lost cannot be sent again.
   */
  async callServer(options: {
    nodeId: string;
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    const { nodeId, groupId, call, signal } = options;
    if (nodeId === this.options.host.nodeId) return this.options.local.call({ groupId, call, signal });
    const to = this.options.peers.httpAddress(nodeId);
    if (to === null) {
      throw new ConclaveError({
        code: 'FORWARD_FAILED',
        message: `the HTTP address of ${nodeId}, which holds the snapshot cursor of group ${groupId}, is not known`,
      });
    }
    return this.options.client.call({ to, groupId, call, signal });
  }

  /** The group's leader, waiting up to the deadline for one to be elected. */
  private async awaitLeader(options: {
    groupId: GroupId;
    deadlineMs: number;
    signal?: AbortSignal | undefined;
  }): Promise<string> {
    for (;;) {
      const leaderId = this.options.host.group(options.groupId).raw.status().leaderId;
      if (leaderId !== null) return leaderId;
      if (Date.now() >= options.deadlineMs || (options.signal?.aborted ?? false)) {
        throw new ConclaveError({
          code: 'NO_LEADER',
          message: `group ${options.groupId} has no leader (waited ${defaultRouterLimits.leaderWaitMs} ms)`,
        });
      }
      await delay(this.options.tickMs);
    }
  }
}

function isRetryable(error: unknown): boolean {
  if (error instanceof PeerUnreachableError) return true;
  if (error instanceof RaftError) {
    return error.code === RaftErrorCode.NotLeader || error.code === RaftErrorCode.TransferInProgress;
  }
  return false;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
