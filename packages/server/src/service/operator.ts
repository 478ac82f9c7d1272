import { ConclaveError, isExpectedError } from '../errors.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCall, GroupCaller, GroupReply } from './calls.js';
import { type ForwardClient, PeerUnreachableError } from './forward-client.js';
import type { LocalGroups } from './local.js';
import type { PeerDirectory } from './router.js';
import type { GroupStatus } from './status.js';

/** One group in the cluster overview, as this server knows it. */
export interface ClusterGroup {
  readonly groupId: GroupId;
  readonly leaderId: string | null;
  /** Voters other than the leader. */
  readonly followers: readonly string[];
  readonly learners: readonly string[];
  readonly term: number;
}

export interface ClusterServer {
  readonly id: string;
  /** Raft address, or the id when it is not known yet. */
  readonly address: string;
  readonly voterOf: number;
  readonly learnerOf: number;
  readonly leaderOf: number;
}

export interface ClusterView {
  readonly nodeId: string;
  readonly groups: readonly ClusterGroup[];
  readonly servers: readonly ClusterServer[];
}

/** A server and its own view of each group it belongs to; `error` when it could not be asked. */
export interface MemberView {
  readonly id: string;
  readonly address: string;
  readonly groups: readonly GroupStatus[];
  readonly error: string | null;
}

/** What an operation did to one group; failures of one group do not hide the others. */
export type GroupOutcome<T> =
  | ({ readonly groupId: GroupId; readonly ok: true } & T)
  | { readonly groupId: GroupId; readonly ok: false; readonly code: string; readonly message: string };

/**
 * Operator views and commands over every group: status from each group's leader (or this
 * server with `stale`), leadership transfers and member removal forwarded to leaders.
 */
export class OperatorService {
  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      caller: GroupCaller;
      local: LocalGroups;
      client: ForwardClient;
      peers: PeerDirectory;
    },
  ) {}

  get groupCount(): number {
    return this.options.host.groupCount;
  }

  /** The leader's view of the group, or this server's with `stale`. */
  async groupStatus(options: { groupId: GroupId; stale: boolean }): Promise<GroupStatus> {
    const call = { groupId: this.checkGroup(options.groupId), call: { kind: 'status' } as const };
    const reply = options.stale ? await this.options.local.call(call) : await this.options.caller.call(call);
    return expectStatus(reply);
  }

  /** Every group's leader, followers and term, and every server, from this server's state. */
  cluster(): ClusterView {
    const host = this.options.host;
    const servers = new Map<string, { voterOf: number; learnerOf: number; leaderOf: number }>();
    const count = (id: string) => {
      const found = servers.get(id) ?? { voterOf: 0, learnerOf: 0, leaderOf: 0 };
      servers.set(id, found);
      return found;
    };
    const groups = this.groupIds().map((groupId): ClusterGroup => {
      const status = host.group(groupId).raw.status();
      for (const id of status.confState.voters) count(id).voterOf++;
      for (const id of status.confState.learners) count(id).learnerOf++;
      if (status.leaderId !== null) count(status.leaderId).leaderOf++;
      return {
        groupId,
        leaderId: status.leaderId,
        followers: status.confState.voters.filter((id) => id !== status.leaderId),
        learners: status.confState.learners,
        term: status.term,
      };
    });
    return {
      nodeId: host.nodeId,
      groups,
      servers: [...servers]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([id, counts]) => ({ id, address: this.raftAddressOf(id), ...counts })),
    };
  }

  /** Each server's own view of its groups: asked of every server, groups one at a time. */
  async members(): Promise<MemberView[]> {
    const view = this.cluster();
    const groupsOf = (id: string) =>
      view.groups
        .filter((g) => g.leaderId === id || g.followers.includes(id) || g.learners.includes(id))
        .map((g) => g.groupId);
    return Promise.all(
      view.servers.map(async (server): Promise<MemberView> => {
        const groups: GroupStatus[] = [];
        try {
          for (const groupId of groupsOf(server.id))
            groups.push(await this.statusOn({ id: server.id, groupId }));
          return { id: server.id, address: server.address, groups, error: null };
        } catch (error) {
          // A server that is down is part of the picture, not a failure of the whole view.
          if (error instanceof PeerUnreachableError)
            return { id: server.id, address: server.address, groups, error: error.message };
          if (!isExpectedError(error)) throw error;
          return { id: server.id, address: server.address, groups, error: `${error.code}: ${error.message}` };
        }
      }),
    );
  }

  /**
   * Hand leadership to `to`: of one group, or of every group it is a voter of. A single
   * group's failure is thrown; with every group, each group's outcome is reported.
   */
  async transferLeader(options: {
    to: string;
    groupId: GroupId | null;
  }): Promise<GroupOutcome<{ from: string; started: boolean }>[]> {
    const { to } = options;
    const call: GroupCall = { kind: 'transfer-leader', to };
    if (options.groupId !== null) {
      const reply = await this.options.caller.call({ groupId: this.checkGroup(options.groupId), call });
      return [{ groupId: options.groupId, ok: true, ...expectTransfer(reply) }];
    }
    const groups = this.groupIds().filter((g) =>
      this.options.host.group(g).raw.status().confState.voters.includes(to),
    );
    if (groups.length === 0) {
      throw new ConclaveError({
        code: 'TRANSFER_TARGET_INVALID',
        message: `${to} is not a voter of any group`,
      });
    }
    return Promise.all(
      groups.map((groupId) =>
        outcome(groupId, async () => expectTransfer(await this.options.caller.call({ groupId, call }))),
      ),
    );
  }

  /** Remove `nodeId` from one group or from every group it belongs to. */
  async removePeer(options: {
    nodeId: string;
    groupId: GroupId | null;
  }): Promise<GroupOutcome<{ index: number | null }>[]> {
    const { nodeId } = options;
    const isMember = (groupId: GroupId) => {
      const conf = this.options.host.group(groupId).raw.status().confState;
      return conf.voters.includes(nodeId) || conf.learners.includes(nodeId);
    };
    const groups =
      options.groupId === null ? this.groupIds().filter(isMember) : [this.checkGroup(options.groupId)];
    if (groups.length === 0 || !groups.every(isMember)) {
      const where = options.groupId === null ? 'any group' : `group ${options.groupId}`;
      throw new ConclaveError({ code: 'BAD_REQUEST', message: `${nodeId} is not a member of ${where}` });
    }
    const call: GroupCall = { kind: 'remove-peer', nodeId };
    const remove = async (groupId: GroupId) => {
      const reply = await this.options.caller.call({ groupId, call });
      if (reply.kind !== 'remove-peer') throw new Error(`expected a remove-peer reply, got ${reply.kind}`);
      return { index: reply.index };
    };
    if (options.groupId !== null)
      return [{ groupId: options.groupId, ok: true, ...(await remove(options.groupId)) }];
    return Promise.all(groups.map((groupId) => outcome(groupId, () => remove(groupId))));
  }

  /** One server's own view of one group: this server locally, another over its internal route. */
  private async statusOn(options: { id: string; groupId: GroupId }): Promise<GroupStatus> {
    const call = { groupId: options.groupId, call: { kind: 'status' } as const };
    if (options.id === this.options.host.nodeId) return expectStatus(await this.options.local.call(call));
    const to = this.options.peers.httpAddress(options.id);
    if (to === null) {
      throw new ConclaveError({
        code: 'FORWARD_FAILED',
        message: `the HTTP address of ${options.id} is not known`,
      });
    }
    return expectStatus(await this.options.client.call({ to, ...call }));
  }

  private checkGroup(groupId: GroupId): GroupId {
    if (!Number.isInteger(groupId) || groupId < 0 || groupId >= this.groupCount) {
      throw new ConclaveError({
        code: 'BAD_REQUEST',
        message: `group must be an integer in [0, ${this.groupCount}), got ${groupId}`,
      });
    }
    return groupId;
  }

  private groupIds(): GroupId[] {
    return [...Array(this.groupCount).keys()];
  }

  private raftAddressOf(nodeId: string): string {
    const address = this.options.peers.raftAddress(nodeId);
    return address === null ? nodeId : `${address.host}:${address.port}`;
  }
}

async function outcome<T>(groupId: GroupId, run: () => Promise<T>): Promise<GroupOutcome<T>> {
  try {
    return { groupId, ok: true, ...(await run()) };
  } catch (error) {
    if (!isExpectedError(error)) throw error;
    return { groupId, ok: false, code: error.code, message: error.message };
  }
}

function expectStatus(reply: GroupReply): GroupStatus {
  if (reply.kind !== 'status') throw new Error(`expected a status reply, got ${reply.kind}`);
  return reply.status;
}

function expectTransfer(reply: GroupReply): { from: string; started: boolean } {
  if (reply.kind !== 'transfer-leader')
    throw new Error(`expected a transfer-leader reply, got ${reply.kind}`);
  return { from: reply.from, started: reply.started };
}
