import { electionCandidatesMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * A leader election. Candidates stand in line; the first is the leader. The term is a new
 * fence (fences.ts) at every change of leader: it only grows, and fences the leader.
 */
export interface ElectionState {
  readonly term: number;
  /** In line order; the leader (if any) first. Each id once. */
  readonly candidates: readonly Candidate[];
}

export interface Candidate {
  readonly id: string;
  readonly session: string;
}

export const electionKind: KindMachine<ElectionState> = {
  eventOp: 'term',
  args: {
    enter: { candidate: 'id' },
    withdraw: { candidate: 'id' },
    anoint: { candidate: 'id' },
    promote: { candidate: 'id' },
    evict: { candidate: 'id' },
    term: {},
  },
  sessionOps: new Set(['enter', 'withdraw']),
  encodeState: (state) => [state.term, state.candidates.map((c) => [c.id, c.session])],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 2, 'an election row is [term, candidates]');
    const [term, candidates] = wire as unknown[];
    assert(Number.isSafeInteger(term), 'a term is a fence');
    assert(Array.isArray(candidates), 'candidates are a list');
    return checked({
      term: term as number,
      candidates: candidates.map((c: unknown) => {
        assert(
          Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string',
          'a candidate is [id, session]',
        );
        return { id: c[0], session: c[1] };
      }),
    });
  },
  apply(op, { state, args, fence, session }): KindOutcome<ElectionState> {
    const election = state ?? { term: 0, candidates: [] };
    const id = args.candidate as string;
    const at = election.candidates.findIndex((c) => c.id === id);
    if (op === 'enter') {
      assert(session !== null, 'entering takes a session');
      const existing = election.candidates[at];
      if (existing !== undefined) {
        if (existing.session !== session) {
          return refuse(
            'CANDIDATE_EXISTS',
            `candidate ${JSON.stringify(id)} stands already, for another session`,
          );
        }
        return unchanged(termOf(election));
      }
      if (election.candidates.length >= electionCandidatesMax) {
        return refuse('OVERLOADED', `${electionCandidatesMax} candidates stand already`);
      }
      return changed({ election, candidates: [...election.candidates, { id, session }], fence });
    }
    if (at < 0) {
      if (op === 'withdraw' || op === 'evict') return unchanged(termOf(election));
      return refuse('NOT_A_CANDIDATE', `${JSON.stringify(id)} is not a candidate`);
    }
    const candidate = election.candidates[at] as Candidate;
    const others = election.candidates.filter((c) => c.id !== id);
    if (op === 'withdraw' && candidate.session !== session) {
      return refuse('NOT_A_CANDIDATE', `${JSON.stringify(id)} stands for another session: evict it instead`);
    }
    switch (op) {
      case 'withdraw':
      case 'evict':
        return changed({ election, candidates: others, fence });
      case 'anoint':
        return changed({ election, candidates: [candidate, ...others], fence });
      case 'promote': {
        // Next in line: right after the leader, or the leader itself when it is first.
        if (at <= 1) return unchanged(termOf(election));
        const [leader, ...rest] = others;
        assert(leader !== undefined, 'a candidate past the first has a leader before it');
        return changed({ election, candidates: [leader, candidate, ...rest], fence });
      }
      default:
        assert(false, () => `election has no write ${op}`);
    }
  },
  read(op, { state }) {
    assert(op === 'term', () => `election has no read ${op}`);
    return termOf(state ?? { term: 0, candidates: [] });
  },
  sessionsOf: (state) => [...new Set(state.candidates.map((c) => c.session))],
  sessionGone(state, { session, fence }) {
    const candidates = state.candidates.filter((c) => c.session !== session);
    return next({ election: state, candidates, fence });
  },
};

/** The state with this line, and a new term if the leader changed. */
function next(options: {
  election: ElectionState;
  candidates: readonly Candidate[];
  fence: () => number;
}): ElectionState {
  const { election, candidates, fence } = options;
  const leaderChanged = election.candidates[0]?.id !== candidates[0]?.id;
  return checked({ term: leaderChanged ? fence() : election.term, candidates });
}

function changed(options: {
  election: ElectionState;
  candidates: readonly Candidate[];
  fence: () => number;
}): KindOutcome<ElectionState> {
  const state = next(options);
  return { ok: true, state, result: termOf(state) };
}

function termOf(state: ElectionState): { term: number; leader: string | null; candidates: string[] } {
  return {
    term: state.term,
    leader: state.candidates[0]?.id ?? null,
    candidates: state.candidates.map((c) => c.id),
  };
}

function checked(state: ElectionState): ElectionState {
  assert(
    new Set(state.candidates.map((c) => c.id)).size === state.candidates.length,
    'a candidate stands once',
  );
  assert(state.candidates.length <= electionCandidatesMax, 'candidates within electionCandidatesMax');
  return state;
}
