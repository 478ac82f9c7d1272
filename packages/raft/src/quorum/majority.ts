import type { NodeId } from '../types.js';

/**
 * The largest value that a majority of `voters` has reached or passed. It is the commit
 * index when the values are match indexes, and the confirmed heartbeat round when they
 * are acknowledged rounds. With no voters nothing is confirmed.
 */
export function majorityValue(voters: readonly NodeId[], valueOfMember: (id: NodeId) => number): number {
  const count = voters.length;
  if (count === 0) return 0;
  const values = voters.map(valueOfMember);
  values.sort((a, b) => b - a);
  const value = values[Math.floor(count / 2)];
  return value ?? 0;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Whether the recorded votes already decide an election among `voters`. */
export function majorityVoteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const needed = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  if (granted >= needed) return 'won';
  if (voters.length - rejected < needed) return 'lost';
  return 'pending';
}

/** Whether the members for which `isActive` holds form a majority of `voters`. */
export function majorityActive(voters: readonly NodeId[], isActive: (id: NodeId) => boolean): boolean {
  let active = 0;
  for (const id of voters) if (isActive(id)) active++;
  return active >= Math.floor(voters.length / 2) + 1;
}
