import { RaftError, RaftErrorCode } from '@conclave/raft';
import type { Logger } from 'pino';
import { type ConclaveFsm, encodeCommand, type FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCall, GroupReply } from './calls.js';
import { evaluate, evaluateBlocking } from './query.js';
import type { SessionKeeper } from './sessions.js';
import type { SnapshotCursors } from './snapshot-cursors.js';
import { localGroupStatus, removeFromGroup, startLeaderTransfer } from './status.js';
import type { ReadMeta, ReadRequest } from './types.js';

/**
 * Executes group calls on this server. Writes and leader reads require that this server
 * lead the group; it never forwards (the router does), so a forwarded call cannot bounce.
 */
export class LocalGroups {
  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      fsm: (groupId: GroupId) => ConclaveFsm;
      sessions: () => SessionKeeper;
      tickMs: number;
      /** Aborted when the server stops: every blocking query returns at once. */
      stopping: AbortSignal;
      /** Open snapshot cursors of this server (snapshot-open, -read, -close). */
      cursors: SnapshotCursors;
      /** Where operator changes run here (transfer-leader, remove-peer) are logged. */
      logger: Logger;
    },
  ) {}

  get snapshotCursors(): SnapshotCursors {
    return this.options.cursors;
  }

  async call(options: {
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    const { groupId, call, signal } = options;
    switch (call.kind) {
      case 'apply':
        return this.apply(groupId, call.command);
      case 'read':
        return this.read({ groupId, call, signal });
      case 'renew':
        this.requireLeader(groupId);
        return { kind: 'renew', session: this.options.sessions().renew(call.id) };
      case 'status':
        return { kind: 'status', status: localGroupStatus({ ...this.options, groupId }) };
      case 'transfer-leader':
        return this.transferLeader(groupId, call.to);
      case 'remove-peer':
        return removeFromGroup({
          ...this.options,
          groupId,
          nodeId: call.nodeId,
          reason: 'operator remove-peer',
          logger: this.options.logger,
          signal,
        });
      case 'snapshot-open':
        return this.openSnapshot({ groupId, stale: call.stale });
      case 'snapshot-read': {
        const { cursorId, bytesMax } = call;
        const read = await this.options.cursors.read({ groupId, cursorId, bytesMax });
        return { kind: 'snapshot-read', parts: read.parts, done: read.done };
      }
      case 'snapshot-close':
        this.options.cursors.close(call.cursorId);
        return { kind: 'snapshot-close' };
    }
  }

  /** Start an operator's leadership transfer; one line when it starts, naming the target. */
  private transferLeader(groupId: GroupId, to: string): GroupReply {
    const reply = startLeaderTransfer({ host: this.options.host, groupId, to });
    if (reply.kind === 'transfer-leader' && reply.started) {
      const term = this.options.host.group(groupId).raw.status().term;
      this.options.logger.info(
        {
          event: 'leader_transfer',
          group: groupId,
          server: to,
          term,
          from: reply.from,
          reason: 'operator transfer-leader',
        },
        `group ${groupId}: handing leadership from ${reply.from} to ${to} (term ${term}): operator transfer-leader`,
      );
    }
    return reply;
  }

  /**
   * A cursor over the group's state now. Not stale: from the leader, whose applied state
   * holds at least every committed write acknowledged. The view, applied index, term and
   * configuration are taken in one synchronous turn, so they describe the same moment.
   */
  private openSnapshot(options: { groupId: GroupId; stale: boolean }): GroupReply {
    const { groupId } = options;
    if (!options.stale) this.requireLeader(groupId);
    const status = this.options.host.group(groupId).raw.status();
    const fsm = this.options.fsm(groupId);
    const { cursorId, source } = this.options.cursors.open({
      groupId,
      openSource: () => fsm.openSnapshotParts(),
    });
    return {
      kind: 'snapshot-open',
      cursorId,
      nodeId: this.options.host.nodeId,
      index: source.appliedIndex,
      term: status.term,
      voters: [...status.confState.voters],
      learners: [...status.confState.learners],
      keys: source.keys,
    };
  }

  /** Ticks since this server heard from the group's leader, in ms; 0 on the leader. */
  lastContactMs(groupId: GroupId): number {
    const status = this.options.host.group(groupId).raw.status();
    return status.role === 'leader' ? 0 : status.electionElapsedTicks * this.options.tickMs;
  }

  isLeader(groupId: GroupId): boolean {
    return this.options.host.group(groupId).raw.status().role === 'leader';
  }

  private async apply(
    groupId: GroupId,
    command: Extract<GroupCall, { kind: 'apply' }>['command'],
  ): Promise<GroupReply> {
    this.requireLeader(groupId);
    if (command.type === 'kv' && command.op.verb === 'lock') {
      // Lock-delay (Consul): after a session holding this key was invalidated, nobody may
      // acquire it for the session's lock-delay, so the old holder can notice it lost it.
      if (this.options.sessions().lockDelayed({ groupId, key: command.op.key })) {
        const index = this.options.fsm(groupId).kvIndex();
        return { kind: 'apply', index, result: { type: 'kv', ok: false, index, error: null } };
      }
    }
    const { index, result } = await this.options.host.propose({ groupId, data: encodeCommand(command) });
    return { kind: 'apply', index, result };
  }

  private async read(options: {
    groupId: GroupId;
    call: Extract<GroupCall, { kind: 'read' }>;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply> {
    const { groupId, call, signal } = options;
    const { read, query } = call;
    if (read.consistency !== 'stale') {
      this.requireLeader(groupId);
      await this.options.host.read({ groupId, mode: read.consistency === 'consistent' ? 'quorum' : 'lease' });
    }
    const fsm = this.options.fsm(groupId);
    const evaluation =
      read.block === null
        ? evaluate(fsm, query)
        : await evaluateBlocking({
            fsm,
            query,
            afterIndex: read.block.index,
            waitMs: read.block.waitMs,
            signal:
              signal === undefined ? this.options.stopping : AbortSignal.any([signal, this.options.stopping]),
          });
    return {
      kind: 'read',
      value: evaluation.value,
      meta: this.meta({ groupId, read, index: evaluation.index }),
    };
  }

  private meta(options: { groupId: GroupId; read: ReadRequest; index: number }): ReadMeta {
    const status = this.options.host.group(options.groupId).raw.status();
    return {
      index: options.index,
      knownLeader: status.leaderId !== null,
      lastContactMs: this.lastContactMs(options.groupId),
      consistency: options.read.consistency,
    };
  }

  private requireLeader(groupId: GroupId): void {
    const status = this.options.host.group(groupId).raw.status();
    if (status.role === 'leader') return;
    throw new RaftError({
      code: RaftErrorCode.NotLeader,
      message: `this server does not lead group ${groupId}`,
      leaderId: status.leaderId,
    });
  }
}
