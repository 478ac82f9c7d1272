import { isExpectedError } from '../errors.js';
import type { ConclaveFsm, FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { expectApply, type GroupCaller } from './calls.js';
import { PeerUnreachableError } from './forward-client.js';
import type { SessionEntry } from './types.js';

export interface SessionLimits {
  /** Consul's multiplier: a session is invalidated TTL × this after its last renewal. */
  readonly ttlMultiplier: number;
  /** Lock-delays remembered at once; the oldest expired ones are dropped first. */
  readonly lockDelaysMax: number;
}

export const defaultSessionLimits: SessionLimits = { ttlMultiplier: 2, lockDelaysMax: 65_536 };

/**
 * Sessions live in every group (a lock in any group must see its session), with group 0 as
 * the authority: it is created there first and destroyed there last. Group 0's leader
 * keeps the TTL deadlines in memory, re-armed in full whenever it gains leadership, and
 * decides expiry, which it replicates as a destroy in every group. Each group's leader
 * also removes copies whose session group 0 no longer has (a destroy cut short).
 */
export class SessionKeeper {
  private readonly deadlinesMs = new Map<string, number>();
  private readonly lockDelaysMs = new Map<string, number>();
  private readonly destroying = new Set<string>();
  /** The group-0 term whose leadership the deadlines belong to; null when not leading. */
  private armedTerm: number | null = null;

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      fsm: (groupId: GroupId) => ConclaveFsm;
      caller: GroupCaller;
      now: () => number;
      limits?: SessionLimits;
    },
  ) {}

  private get limits(): SessionLimits {
    return this.options.limits ?? defaultSessionLimits;
  }

  /** Group 0's leader: restart the session's TTL. Null when it does not exist. */
  renew(id: string): SessionEntry | null {
    const session = this.options.fsm(0).getSession(id);
    if (session === null) return null;
    if (session.ttlSeconds > 0) this.deadlinesMs.set(id, this.expiryFromNow(session));
    return session;
  }

  /** Called with every result any group applies on this server, leader or not. */
  observe(options: { groupId: GroupId; result: FsmResult }): void {
    const { groupId, result } = options;
    if (result.type !== 'session-destroy') return;
    const now = this.options.now();
    for (const { key, lockDelayMs } of result.released) {
      if (lockDelayMs <= 0) continue;
      if (this.lockDelaysMs.size >= this.limits.lockDelaysMax) this.forgetExpiredLockDelays(now);
      if (this.lockDelaysMs.size >= this.limits.lockDelaysMax) break;
      this.lockDelaysMs.set(lockDelayKey(groupId, key), now + lockDelayMs);
    }
  }

  lockDelayed(options: { groupId: GroupId; key: string }): boolean {
    const name = lockDelayKey(options.groupId, options.key);
    const untilMs = this.lockDelaysMs.get(name);
    if (untilMs === undefined) return false;
    if (untilMs > this.options.now()) return true;
    this.lockDelaysMs.delete(name);
    return false;
  }

  /** Destroy a session in every group: copies first, then the authority in group 0. */
  async destroyEverywhere(id: string): Promise<void> {
    const caller = this.options.caller;
    const command = { type: 'session-destroy', id } as const;
    const others = [...Array(this.options.host.groupCount).keys()].filter((g) => g !== 0);
    await Promise.all(others.map((groupId) => caller.call({ groupId, call: { kind: 'apply', command } })));
    expectApply(await caller.call({ groupId: 0, call: { kind: 'apply', command } }));
    this.deadlinesMs.delete(id);
  }

  /**
   * One pass: track TTLs if this server leads group 0, expire what is due, and clean up
   * orphaned copies in the groups this server leads. Called periodically by the service.
   */
  async sweep(): Promise<void> {
    const expired = this.trackDeadlines();
    const orphans = this.findOrphans();
    const work = [
      ...expired.map((id) => this.destroyOnce(id, () => this.destroyEverywhere(id))),
      ...orphans.map(({ groupId, id }) =>
        this.destroyOnce(`${groupId}/${id}`, async () => {
          const call = { kind: 'apply', command: { type: 'session-destroy', id } } as const;
          await this.options.caller.call({ groupId, call });
        }),
      ),
    ];
    await Promise.all(work);
  }

  /** Session ids whose TTL ran out; empty unless this server leads group 0. */
  private trackDeadlines(): string[] {
    const status = this.options.host.group(0).raw.status();
    if (status.role !== 'leader') {
      this.armedTerm = null;
      this.deadlinesMs.clear();
      return [];
    }
    if (this.armedTerm !== status.term) {
      // A new leader cannot know when sessions were last renewed (another leader may have
      // served renewals in between, even if this server led before): every TTL restarts.
      this.armedTerm = status.term;
      this.deadlinesMs.clear();
    }
    const now = this.options.now();
    const live = new Set<string>();
    const expired: string[] = [];
    for (const session of this.options.fsm(0).listSessions({ node: null })) {
      if (session.ttlSeconds === 0) continue;
      live.add(session.id);
      const deadline = this.deadlinesMs.get(session.id);
      if (deadline === undefined) this.deadlinesMs.set(session.id, this.expiryFromNow(session));
      else if (deadline <= now) expired.push(session.id);
    }
    for (const id of this.deadlinesMs.keys()) if (!live.has(id)) this.deadlinesMs.delete(id);
    return expired;
  }

  /**
   * Copies in groups this server leads whose session group 0 has already dropped. Group 0
   * creates a session before any copy, so a copy created at group-0 index I whose session is
   * missing from a group 0 that has applied I was destroyed there.
   */
  private findOrphans(): { groupId: GroupId; id: string }[] {
    const authority = this.options.fsm(0);
    const orphans: { groupId: GroupId; id: string }[] = [];
    for (let groupId = 1; groupId < this.options.host.groupCount; groupId++) {
      if (this.options.host.group(groupId).raw.status().role !== 'leader') continue;
      for (const copy of this.options.fsm(groupId).listSessions({ node: null })) {
        if (copy.createIndex > authority.appliedIndex()) continue;
        if (authority.getSession(copy.id) === null) orphans.push({ groupId, id: copy.id });
      }
    }
    return orphans;
  }

  private async destroyOnce(name: string, destroy: () => Promise<void>): Promise<void> {
    if (this.destroying.has(name)) return;
    this.destroying.add(name);
    try {
      await destroy();
    } catch (error) {
      // Expected while leaders move: the next sweep finds the same session and tries again.
      // Anything else is a bug and must surface.
      if (!isExpectedError(error) && !(error instanceof PeerUnreachableError)) throw error;
    } finally {
      this.destroying.delete(name);
    }
  }

  private expiryFromNow(session: SessionEntry): number {
    return this.options.now() + session.ttlSeconds * 1000 * this.limits.ttlMultiplier;
  }

  private forgetExpiredLockDelays(now: number): void {
    for (const [name, untilMs] of this.lockDelaysMs) if (untilMs <= now) this.lockDelaysMs.delete(name);
  }
}

function lockDelayKey(groupId: GroupId, key: string): string {
  return `${groupId}\u0000${key}`;
}
