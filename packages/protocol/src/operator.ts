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
