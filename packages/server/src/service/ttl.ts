import { isExpectedError } from '../errors.js';
import type { ConclaveFsm, FsmResult, TtlRow } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import type { GroupCaller } from './calls.js';
import { PeerUnreachableError } from './forward-client.js';

/** What one group's leader knows of its TTLs: a deadline per row, from this leadership. */
interface GroupDeadlines {
  /** The term the deadlines belong to: a new leadership counts every TTL afresh. */
  readonly term: number;
  /** The index up to which changes were read from the FSM's event log. */
  cursor: number;
  readonly rows: Map<string, { readonly ttl: TtlRow; readonly deadlineMs: number }>;
}

/**
 * Expires primitives written with a TTL (map entries, set elements, values). As with
 * Consul's session TTLs, time is the leader's: each group's leader arms a deadline per row
 * when it sees the write (or, on gaining leadership, for every row with a TTL, counted from
 * then), and when one passes it proposes the row's removal on condition that the row is
 * still at the version the TTL counted from. So a row lives at least its TTL, and at most
 * about twice it across a change of leader; a row written again meanwhile is not removed.
 */
export class TtlKeeper {
  private readonly groups = new Map<GroupId, GroupDeadlines>();
  private readonly expiring = new Set<string>();

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      fsm: (groupId: GroupId) => ConclaveFsm;
      caller: GroupCaller;
      now: () => number;
    },
  ) {}

  /** One pass: bring each led group's deadlines up to date and expire what is due. */
  async sweep(): Promise<void> {
    const due: { groupId: GroupId; ttl: TtlRow }[] = [];
    for (let groupId = 0; groupId < this.options.host.groupCount; groupId++) {
      for (const ttl of this.dueIn(groupId)) due.push({ groupId, ttl });
    }
    await Promise.all(due.map((expiry) => this.expire(expiry)));
  }

  private dueIn(groupId: GroupId): TtlRow[] {
    const status = this.options.host.group(groupId).raw.status();
    if (status.role !== 'leader') {
      this.groups.delete(groupId);
      return [];
    }
    const deadlines = this.track({ groupId, term: status.term });
    const now = this.options.now();
    const due: TtlRow[] = [];
    for (const { ttl, deadlineMs } of deadlines.rows.values()) if (deadlineMs <= now) due.push(ttl);
    return due;
  }

  /** The group's deadlines, armed afresh for a new term or a log that no longer reaches back. */
  private track(options: { groupId: GroupId; term: number }): GroupDeadlines {
    const { groupId, term } = options;
    const fsm = this.options.fsm(groupId);
    const now = this.options.now();
    const current = this.groups.get(groupId);
    const changes = current?.term === term ? fsm.primitiveTtlChanges(current.cursor) : null;
    if (current !== undefined && changes !== null) {
      for (const { rowKey, ttl } of changes) {
        if (ttl === null) current.rows.delete(rowKey);
        else current.rows.set(rowKey, { ttl, deadlineMs: now + ttl.ttlMs });
      }
      current.cursor = fsm.appliedIndex();
      return current;
    }
    const rows = new Map(
      fsm.primitiveTtls().map((ttl) => [ttl.rowKey, { ttl, deadlineMs: now + ttl.ttlMs }]),
    );
    const armed = { term, cursor: fsm.appliedIndex(), rows };
    this.groups.set(groupId, armed);
    return armed;
  }

  private async expire(options: { groupId: GroupId; ttl: TtlRow }): Promise<void> {
    const { groupId, ttl } = options;
    if (this.expiring.has(ttl.rowKey)) return;
    this.expiring.add(ttl.rowKey);
    const op = ttl.kind === 'value' ? 'delete' : 'remove';
    const args = { ...(ttl.key === undefined ? {} : { key: ttl.key }), ifVersion: ttl.version };
    const command = {
      type: 'prim',
      kind: ttl.kind,
      name: ttl.name,
      op,
      args,
      session: null,
      seq: null,
    } as const;
    try {
      await this.options.caller.call({ groupId, call: { kind: 'apply', command } });
    } catch (error) {
      // Expected while leaders move (the next leader arms its own deadlines); anything
      // else is a bug and must surface.
      if (!isExpectedError(error) && !(error instanceof PeerUnreachableError)) throw error;
    } finally {
      this.expiring.delete(ttl.rowKey);
    }
  }
}
