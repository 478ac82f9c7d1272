import { randomUUID } from 'node:crypto';
import { groupOfKey, isPartitionedKind, opModeOf } from '@conclave/protocol';
import { ConclaveError } from '../errors.js';
import {
  type ConclaveFsm,
  type EventsRead,
  type FsmCommand,
  type FsmError,
  type FsmResult,
  groupSessionsMax,
  type PrimitiveCommand,
  type PrimitiveEvent,
  type PrimitiveRead,
  primitiveRowKey,
} from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { expectApply, expectRead, type GroupCaller, type GroupQuery, type GroupReply } from './calls.js';
import type { PeerDirectory } from './router.js';
import type { SessionKeeper } from './sessions.js';
import type {
  ConclaveService,
  KvEntry,
  KvOp,
  RaftServer,
  Read,
  ReadMeta,
  ReadRequest,
  SessionEntry,
  SessionSpec,
  TxnOutcome,
} from './types.js';

export interface ServiceLimits {
  /** Sessions group 0 holds at most; creating more is refused with QUOTA_EXCEEDED. */
  readonly sessionsMax: number;
}

/** The FSM's bound on a group's sessions, so the service refuses first, before any proposal. */
export const defaultServiceLimits: ServiceLimits = { sessionsMax: groupSessionsMax };

/**
 * The KV, txn and session service over the multi-Raft host. Single-key operations go to the
 * key's group; scans gather from every group a prefix can reach. A scan's index is the sum
 * of its groups' indexes: each part only grows, so the sum only grows, and it grows exactly
 * when some part changed, which makes it a valid `?index` for a blocking query.
 */
export class KvService implements ConclaveService {
  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      caller: GroupCaller;
      sessions: SessionKeeper;
      fsm: (groupId: GroupId) => ConclaveFsm;
      peers: PeerDirectory;
      limits?: ServiceLimits;
    },
  ) {}

  groupCount(): number {
    return this.options.host.groupCount;
  }

  async kvGet(options: ReadRequest & { key: string }): Promise<Read<KvEntry | null>> {
    const groupId = this.groupOf(options.key);
    const reply = expectRead(
      await this.read({ groupId, query: { kind: 'get', key: options.key }, read: options }),
    );
    return { value: reply.value as KvEntry | null, meta: reply.meta };
  }

  async kvList(options: ReadRequest & { prefix: string }): Promise<Read<readonly KvEntry[]>> {
    const parts = await this.gather({
      groups: this.groupsOfPrefix(options.prefix),
      query: { kind: 'list', prefix: options.prefix },
      read: options,
    });
    const entries = parts
      .flatMap((part) => part.value as KvEntry[])
      .sort((a, b) => compareKeys(a.key, b.key));
    return { value: entries, meta: combineMeta(parts.map((p) => p.meta)) };
  }

  async kvKeys(
    options: ReadRequest & { prefix: string; separator: string | null },
  ): Promise<Read<readonly string[]>> {
    const query = { kind: 'keys', prefix: options.prefix, separator: options.separator } as const;
    const parts = await this.gather({ groups: this.groupsOfPrefix(options.prefix), query, read: options });
    // With a separator, two groups may roll different keys up to the same folder.
    const keys = [...new Set(parts.flatMap((part) => part.value as string[]))].sort(compareKeys);
    return { value: keys, meta: combineMeta(parts.map((p) => p.meta)) };
  }

  async kvPut(options: {
    key: string;
    value: Uint8Array;
    flags: number;
    cas: number | null;
    acquire: string | null;
    release: string | null;
  }): Promise<{ ok: boolean; index: number }> {
    const { key, value, flags } = options;
    const op: KvOp =
      options.acquire !== null
        ? { verb: 'lock', key, value, flags, session: options.acquire }
        : options.release !== null
          ? { verb: 'unlock', key, value, flags, session: options.release }
          : options.cas !== null
            ? { verb: 'cas', key, value, flags, index: options.cas }
            : { verb: 'set', key, value, flags };
    return this.writeKv(op);
  }

  async kvDelete(options: {
    key: string;
    recurse: boolean;
    cas: number | null;
  }): Promise<{ ok: boolean; index: number }> {
    const { key } = options;
    if (!options.recurse) {
      return this.writeKv(
        options.cas === null ? { verb: 'delete', key } : { verb: 'delete-cas', key, index: options.cas },
      );
    }
    // A recursive delete reaches every group the prefix can: each part is atomic on its own.
    const groups = this.groupsOfPrefix(key);
    const results = await Promise.all(
      groups.map((groupId) =>
        this.apply({ groupId, command: { type: 'kv', op: { verb: 'delete-tree', key } } }),
      ),
    );
    return { ok: true, index: Math.max(...results.map((r) => r.index)) };
  }

  async txn(options: { ops: readonly KvOp[] }): Promise<TxnOutcome> {
    const groups = new Map<GroupId, string[]>();
    for (const op of options.ops) {
      const groupId =
        op.verb === 'get-tree' || op.verb === 'delete-tree' ? this.groupOfTree(op.key) : this.groupOf(op.key);
      if (groupId === null) {
        throw new ConclaveError({
          code: 'TXN_CROSS_GROUP',
          message: `a transaction must stay within one group, but ${op.verb} on prefix ${JSON.stringify(op.key)} reaches every group`,
        });
      }
      groups.set(groupId, [...(groups.get(groupId) ?? []), op.key]);
    }
    if (groups.size > 1) {
      const spread = [...groups].map(
        ([g, keys]) => `group ${g}: ${keys.map((k) => JSON.stringify(k)).join(', ')}`,
      );
      throw new ConclaveError({
        code: 'TXN_CROSS_GROUP',
        message: `a transaction must stay within one group, but its keys span ${groups.size} (${spread.join('; ')})`,
      });
    }
    const groupId = [...groups.keys()][0] ?? 0;
    const { result } = await this.apply({ groupId, command: { type: 'txn', ops: options.ops } });
    if (result.type !== 'txn') throw unexpected(result);
    if (result.error !== null) throw refusal({ groupId, error: result.error });
    return result.outcome;
  }

  async sessionCreate(spec: Omit<SessionSpec, 'id'>): Promise<{ id: string }> {
    const limits = this.options.limits ?? defaultServiceLimits;
    if (this.options.fsm(0).listSessions({ node: null }).length >= limits.sessionsMax) {
      // The same refusal as the FSM's past its bound, answered before any proposal.
      throw new ConclaveError({
        code: 'QUOTA_EXCEEDED',
        message: `group 0: ${limits.sessionsMax} sessions exist already: destroy sessions no longer used`,
      });
    }
    const session: SessionSpec = { ...spec, id: randomUUID() };
    // Group 0 first: it is the authority, and its index is every copy's CreateIndex.
    const created = await this.apply({
      groupId: 0,
      command: { type: 'session-create', session, createIndex: null },
    });
    if (created.result.type !== 'session-create') throw unexpected(created.result);
    if (created.result.error !== null) throw refusal({ groupId: 0, error: created.result.error });
    const createIndex = created.result.session.createIndex;
    try {
      await Promise.all(
        this.otherGroups().map(async (groupId) => {
          const copy = await this.apply({
            groupId,
            command: { type: 'session-create', session, createIndex },
          });
          if (copy.result.type !== 'session-create') throw unexpected(copy.result);
          if (copy.result.error !== null) throw refusal({ groupId, error: copy.result.error });
        }),
      );
    } catch (error) {
      // Drop the authority; copies already made are removed by the keeper's orphan sweep.
      await this.apply({ groupId: 0, command: { type: 'session-destroy', id: session.id } }).catch(
        () => undefined,
      );
      throw error;
    }
    return { id: session.id };
  }

  async sessionDestroy(options: { id: string }): Promise<boolean> {
    await this.options.sessions.destroyEverywhere(options.id);
    return true;
  }

  async sessionRenew(options: { id: string }): Promise<SessionEntry | null> {
    const reply = await this.options.caller.call({ groupId: 0, call: { kind: 'renew', id: options.id } });
    if (reply.kind !== 'renew') throw new Error(`expected a renew reply, got ${reply.kind}`);
    return reply.session;
  }

  async sessionInfo(options: ReadRequest & { id: string }): Promise<Read<SessionEntry | null>> {
    const reply = expectRead(
      await this.read({ groupId: 0, query: { kind: 'session', id: options.id }, read: options }),
    );
    return { value: reply.value as SessionEntry | null, meta: reply.meta };
  }

  async sessionList(options: ReadRequest & { node: string | null }): Promise<Read<readonly SessionEntry[]>> {
    const reply = expectRead(
      await this.read({ groupId: 0, query: { kind: 'sessions', node: options.node }, read: options }),
    );
    return { value: reply.value as SessionEntry[], meta: reply.meta };
  }

  leaderAddress(): string {
    const leaderId = this.options.host.group(0).raw.status().leaderId;
    return leaderId === null ? '' : this.raftAddressOf(leaderId);
  }

  peers(): readonly string[] {
    return this.options.host
      .group(0)
      .raw.status()
      .confState.voters.map((id) => this.raftAddressOf(id));
  }

  raftConfiguration(options: { groupId: number }): { servers: readonly RaftServer[]; index: number } {
    const status = this.options.host.group(options.groupId).raw.status();
    const server = (id: string, voter: boolean): RaftServer => ({
      id,
      node: id,
      address: this.raftAddressOf(id),
      leader: id === status.leaderId,
      voter,
    });
    return {
      servers: [
        ...status.confState.voters.map((id) => server(id, true)),
        ...status.confState.learners.map((id) => server(id, false)),
      ],
      index: status.applied,
    };
  }

  async primitiveWrite(command: PrimitiveCommand): Promise<{ result: unknown; index: number }> {
    if (opModeOf(command) !== 'gather-write') {
      return this.applyPrimitive({ groupId: this.groupOfPrimitive(command), command });
    }
    // Each group remembers the session's results on its own, so one seq serves them all.
    const parts = await Promise.all(
      this.allGroups().map((groupId) => this.applyPrimitive({ groupId, command })),
    );
    const removed = parts.reduce((sum, part) => sum + ((part.result as { removed: number }).removed ?? 0), 0);
    return { result: { removed }, index: Math.max(...parts.map((part) => part.index)) };
  }

  async primitiveRead(options: ReadRequest & { read: PrimitiveRead; group: number }): Promise<Read<unknown>> {
    const { read } = options;
    const query = { kind: 'primitive', read } as const;
    const mode = opModeOf(read);
    if (mode === 'read') {
      const reply = expectRead(
        await this.read({ groupId: this.groupOfPrimitive(read), query, read: options }),
      );
      return { value: reply.value, meta: reply.meta };
    }
    if (read.op === 'size') {
      const parts = await this.gather({ groups: this.allGroups(), query, read: options });
      const size = parts.reduce((sum, part) => sum + (part.value as { size: number }).size, 0);
      return { value: { size }, meta: combineMeta(parts.map((part) => part.meta)) };
    }
    const reply = expectRead(await this.read({ groupId: options.group, query, read: options }));
    return {
      value: { ...(reply.value as object), group: options.group, groups: this.groupCount() },
      meta: reply.meta,
    };
  }

  async primitiveEvents(options: {
    read: EventsRead;
    group: number;
    waitMs: number;
    signal?: AbortSignal | undefined;
  }): Promise<Read<{ events: readonly PrimitiveEvent[]; compacted: boolean }>> {
    const { read } = options;
    const whole = !isPartitionedKind(read.kind) || read.key !== undefined;
    const args = read.key === undefined ? {} : { key: read.key };
    const groupId = whole ? this.groupOfPrimitive({ ...read, op: 'events', args }) : options.group;
    const block = options.waitMs > 0 ? { index: read.after, waitMs: options.waitMs } : null;
    const reply = expectRead(
      await this.read({
        groupId,
        query: { kind: 'primitive-events', read },
        read: { consistency: 'stale', maxStaleMs: null, block, signal: options.signal },
      }),
    );
    return { value: reply.value as { events: PrimitiveEvent[]; compacted: boolean }, meta: reply.meta };
  }

  private async applyPrimitive(options: {
    groupId: GroupId;
    command: PrimitiveCommand;
  }): Promise<{ result: unknown; index: number }> {
    const { result, index } = await this.apply({
      groupId: options.groupId,
      command: { type: 'prim', ...options.command },
    });
    if (result.type !== 'prim') throw unexpected(result);
    if (result.error !== null) throw new ConclaveError(result.error);
    return { result: result.result, index };
  }

  /** The group of a whole primitive's row, or of a partitioned one's entry (or transaction). */
  private groupOfPrimitive(command: PrimitiveRead): GroupId {
    const { kind, name, args } = command;
    if (command.op === 'transaction') return this.groupOfTransaction(command);
    const key = isPartitionedKind(kind) ? (args.key as string) : undefined;
    return this.groupOf(primitiveRowKey({ kind, name, ...(key === undefined ? {} : { key }) }));
  }

  /** The one group of a map transaction's keys; keys in several are refused. */
  private groupOfTransaction(command: PrimitiveRead): GroupId {
    const steps = command.args.steps as readonly { key: string }[];
    const groups = new Set(
      steps.map(({ key }) => this.groupOfPrimitive({ ...command, op: 'put', args: { key } })),
    );
    const [groupId, ...others] = groups;
    if (groupId === undefined || others.length > 0) {
      throw new ConclaveError({
        code: 'TXN_CROSS_GROUP',
        message: `the transaction's keys are in ${groups.size} groups: give them one {hash tag}, e.g. "{order-7}/a" and "{order-7}/b"`,
      });
    }
    return groupId;
  }

  private allGroups(): GroupId[] {
    return [...Array(this.options.host.groupCount).keys()];
  }

  private async writeKv(op: KvOp): Promise<{ ok: boolean; index: number }> {
    const groupId = this.groupOf(op.key);
    const { result } = await this.apply({ groupId, command: { type: 'kv', op } });
    if (result.type !== 'kv') throw unexpected(result);
    if (result.error !== null) throw refusal({ groupId, error: result.error });
    return { ok: result.ok, index: result.index };
  }

  private async apply(options: {
    groupId: GroupId;
    command: FsmCommand;
  }): Promise<{ index: number; result: FsmResult }> {
    const reply = expectApply(
      await this.options.caller.call({
        groupId: options.groupId,
        call: { kind: 'apply', command: options.command },
      }),
    );
    return { index: reply.index, result: reply.result };
  }

  private read(options: {
    groupId: GroupId;
    query: GroupQuery;
    read: ReadRequest;
    signal?: AbortSignal;
  }): Promise<GroupReply> {
    const { groupId, query, read } = options;
    // The signal stays on this server: it cannot be sent, and the call needs none.
    const request: ReadRequest = {
      consistency: read.consistency,
      maxStaleMs: read.maxStaleMs,
      block: read.block,
    };
    const signals = [options.signal, read.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
    return this.options.caller.call({ groupId, call: { kind: 'read', query, read: request }, signal });
  }

  /**
   * Read every group the prefix reaches. Blocking: wait on every group at once, each with
   * the index it last reported, and take the first that changes.
   */
  private async gather(options: {
    groups: readonly GroupId[];
    query: GroupQuery;
    read: ReadRequest;
  }): Promise<{ value: unknown; meta: ReadMeta }[]> {
    const { query, read, groups } = options;
    const nonBlocking = { ...read, block: null, signal: undefined };
    const parts = (
      await Promise.all(groups.map((groupId) => this.read({ groupId, query, read: nonBlocking })))
    ).map((reply) => expectRead(reply));
    if (read.block === null) return parts;
    const deadlineMs = Date.now() + read.block.waitMs;
    while (sumIndexes(parts) <= read.block.index) {
      const waitMs = deadlineMs - Date.now();
      if (waitMs <= 0) break;
      const controller = new AbortController();
      const waits = groups.map(async (groupId, i) => {
        const index = parts[i]?.meta.index ?? 0;
        const block = { index, waitMs };
        const reply = await this.read({
          groupId,
          query,
          read: { ...read, block },
          signal: controller.signal,
        });
        return { i, reply: expectRead(reply) };
      });
      const first = await Promise.race(waits);
      controller.abort();
      // The losers were aborted on purpose; their outcome no longer matters.
      for (const wait of waits) wait.catch(() => undefined);
      const before = parts[first.i]?.meta.index ?? 0;
      parts[first.i] = first.reply;
      if (first.reply.meta.index <= before && Date.now() >= deadlineMs) break;
    }
    return parts;
  }

  private groupOf(key: string): GroupId {
    return groupOfKey({ key, groupCount: this.options.host.groupCount });
  }

  /** A tree operation stays in one group only when its prefix pins a hash tag. */
  private groupOfTree(prefix: string): GroupId | null {
    const groups = this.groupsOfPrefix(prefix);
    return groups.length === 1 && groups[0] !== undefined ? groups[0] : null;
  }

  /** Every key under a prefix holding a whole `{tag}` shares that tag, hence one group. */
  private groupsOfPrefix(prefix: string): readonly GroupId[] {
    const open = prefix.indexOf('{');
    const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
    if (close > open + 1) return [this.groupOf(prefix)];
    return [...Array(this.options.host.groupCount).keys()];
  }

  private otherGroups(): GroupId[] {
    return [...Array(this.options.host.groupCount).keys()].filter((g) => g !== 0);
  }

  private raftAddressOf(nodeId: string): string {
    const address = this.options.peers.raftAddress(nodeId);
    return address === null ? nodeId : `${address.host}:${address.port}`;
  }
}

function combineMeta(metas: readonly ReadMeta[]): ReadMeta {
  return {
    index: Math.max(
      1,
      metas.reduce((sum, m) => sum + m.index, 0),
    ),
    knownLeader: metas.every((m) => m.knownLeader),
    lastContactMs: Math.max(0, ...metas.map((m) => m.lastContactMs)),
    consistency: metas[0]?.consistency ?? 'default',
  };
}

function sumIndexes(parts: readonly { meta: ReadMeta }[]): number {
  return Math.max(
    1,
    parts.reduce((sum, p) => sum + p.meta.index, 0),
  );
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A command the state machine refused, as the API reports it; a quota names its group. */
function refusal(options: { groupId: GroupId; error: FsmError }): ConclaveError {
  const { groupId, error } = options;
  const message = error.code === 'QUOTA_EXCEEDED' ? `group ${groupId}: ${error.message}` : error.message;
  return new ConclaveError({ code: error.code, message });
}

function unexpected(result: FsmResult): Error {
  return new Error(`the state machine answered a ${result.type} result to another command`);
}
