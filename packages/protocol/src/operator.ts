/**
 * Shapes of the operator API (`/v1/operator/...`, `/v1/agent/...`) shared by the server
 * that answers them and the clients that read them.
 */

/** One member of a group. Progress fields come from the leader; null on any other server. */
export interface MemberStatus {
  readonly id: string;
  readonly voter: boolean;
  readonly leader: boolean;
  /** The highest index known replicated on the member. */
  readonly matchIndex: number | null;
  /** Entries the member is behind the leader's last index. */
  readonly trailingEntries: number | null;
  /** Heard from within the current election timeout. */
  readonly recentActive: boolean | null;
}

/**
 * A server removed from one or more groups (by autopilot's dead-server cleanup or an
 * operator) and not added back since, as the server answering has applied it.
 */
export interface RemovedServer {
  readonly id: string;
  /** The groups it was removed from, ascending. */
  readonly groups: readonly number[];
  /** When this server applied the latest of those removals (RFC 3339). */
  readonly removedAt: string;
  /** Who removed it and why, as the remover said. */
  readonly reason: string;
}
