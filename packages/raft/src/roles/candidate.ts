import type { Raft } from '../raft.js';
import { type Message, Role } from '../types.js';
import { stepFollower } from './follower.js';

/** The step function of a pre-candidate and of a candidate. */
export function stepCandidate(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'app':
    case 'heartbeat':
    case 'snap':
      // Someone won this term: follow it.
      raft.becomeFollower({ term: message.term, leaderId: message.from });
      stepFollower(raft, message);
      return;
    case 'preVoteResp':
    case 'voteResp': {
      const counts =
        raft.role === Role.PreCandidate ? message.type === 'preVoteResp' : message.type === 'voteResp';
      if (!counts || !raft.isVoter(message.from)) return;
      raft.votes.set(message.from, !message.reject);
      raft.recordVoteOutcome();
      return;
    }
    default:
      return;
  }
}
