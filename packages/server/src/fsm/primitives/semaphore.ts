import { primitiveWaitersMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * A counting semaphore. Permits are held by sessions, so a dead session's permits come
 * back. Waiters are served first come, first served: a large request at the head is not
 * passed by smaller ones behind it.
 */
export interface SemaphoreState {
  /** Permits in all (setPermits); 0 until set. */
  readonly permits: number;
  /** [session, permits held], each session once, by first acquisition. */
  readonly holders: readonly (readonly [string, number])[];
  /** [session, permits wanted], first in line first, each session once. */
  readonly waiters: readonly (readonly [string, number])[];
}

export const semaphoreKind: KindMachine<SemaphoreState> = {
  eventOp: 'availablePermits',
  args: {
    setPermits: { permits: 'index' },
    tryAcquire: { permits: 'count?' },
    acquire: { permits: 'count?' },
    cancel: {},
    release: { permits: 'count?' },
    drain: {},
    availablePermits: { session: 'id?' },
  },
  sessionOps: new Set(['tryAcquire', 'acquire', 'cancel', 'release', 'drain']),
  encodeState: (state) => [state.permits, state.holders, state.waiters],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 3, 'a semaphore row is [permits, holders, waiters]');
    const [permits, holders, waiters] = wire as unknown[];
    assert(Number.isSafeInteger(permits), 'permits: an integer');
    return checked({ permits: permits as number, holders: pairs(holders), waiters: pairs(waiters) });
  },
  apply(op, { state, args, session }): KindOutcome<SemaphoreState> {
    const semaphore = state ?? { permits: 0, holders: [], waiters: [] };
    const wanted = (args.permits as number | undefined) ?? 1;
    const held = heldBy(semaphore, session);
    switch (op) {
      case 'setPermits':
        return changed(serve({ ...semaphore, permits: args.permits as number }), session);
      case 'tryAcquire':
      case 'acquire': {
        if (wanted > semaphore.permits) {
          return refuse(
            'PERMITS_INVALID',
            `${wanted} permits asked of a semaphore of ${semaphore.permits}${semaphore.permits === 0 ? ': set its permits first' : ''}`,
          );
        }
        assert(session !== null, 'acquiring takes a session');
        const waiting = semaphore.waiters.findIndex(([s]) => s === session);
        if (waiting >= 0) return unchanged({ acquired: false, held, position: waiting + 1 });
        if (semaphore.waiters.length === 0 && available(semaphore) >= wanted) {
          return changed(withHeld(semaphore, session, held + wanted), session, { acquired: true });
        }
        if (op === 'tryAcquire') return unchanged({ acquired: false, held });
        if (semaphore.waiters.length >= primitiveWaitersMax) {
          return refuse('OVERLOADED', `${primitiveWaitersMax} sessions wait for this semaphore already`);
        }
        const waiters = [...semaphore.waiters, [session, wanted] as const];
        return changed(checked({ ...semaphore, waiters }), session, {
          acquired: false,
          position: waiters.length,
        });
      }
      case 'cancel': {
        if (!semaphore.waiters.some(([s]) => s === session)) return unchanged({ held });
        // The one behind may fit now that the head of the line (this one, perhaps) is gone.
        return changed(
          serve(checked({ ...semaphore, waiters: semaphore.waiters.filter(([s]) => s !== session) })),
          session,
        );
      }
      case 'release': {
        assert(session !== null, 'releasing takes a session');
        if (wanted > held)
          return refuse('PERMITS_INVALID', `the session holds ${held} permits, not ${wanted}`);
        return changed(serve(withHeld(semaphore, session, held - wanted)), session);
      }
      case 'drain': {
        assert(session !== null, 'draining takes a session');
        const drained = Math.max(0, available(semaphore));
        if (drained === 0) return unchanged({ drained: 0, held });
        return changed(withHeld(semaphore, session, held + drained), session, { drained });
      }
      default:
        assert(false, () => `semaphore has no write ${op}`);
    }
  },
  read(op, { state, args }) {
    assert(op === 'availablePermits', () => `semaphore has no read ${op}`);
    const semaphore = state ?? { permits: 0, holders: [], waiters: [] };
    // With a session: what it holds and where it stands in line (0: not waiting).
    const session = (args.session as string | undefined) ?? null;
    return {
      available: Math.max(0, available(semaphore)),
      permits: semaphore.permits,
      waiters: semaphore.waiters.length,
      held: heldBy(semaphore, session),
      position: semaphore.waiters.findIndex(([s]) => s === session) + 1,
    };
  },
  sessionsOf: (state) => [...new Set([...state.holders, ...state.waiters].map(([s]) => s))],
  sessionGone(state, { session }) {
    const holders = state.holders.filter(([s]) => s !== session);
    const waiters = state.waiters.filter(([s]) => s !== session);
    return serve(checked({ ...state, holders, waiters }));
  },
};

function changed(
  state: SemaphoreState,
  session: string | null,
  extra: object = {},
): KindOutcome<SemaphoreState> {
  return {
    ok: true,
    state,
    result: { ...extra, held: heldBy(state, session), available: Math.max(0, available(state)) },
  };
}

function heldBy(state: SemaphoreState, session: string | null): number {
  return state.holders.find(([s]) => s === session)?.[1] ?? 0;
}

/** Permits free now; negative when setPermits cut below what is held. */
function available(state: SemaphoreState): number {
  return state.permits - state.holders.reduce((sum, [, n]) => sum + n, 0);
}

function withHeld(state: SemaphoreState, session: string, count: number): SemaphoreState {
  const others = state.holders.filter(([s]) => s !== session);
  const holders =
    count === 0
      ? others
      : state.holders.some(([s]) => s === session)
        ? state.holders.map(([s, n]) => [s, s === session ? count : n] as const)
        : [...others, [session, count] as const];
  return checked({ ...state, holders });
}

/** Grants waiters in order while the first in line fits. */
function serve(state: SemaphoreState): SemaphoreState {
  let next = state;
  for (;;) {
    const [head, ...rest] = next.waiters;
    if (head === undefined || available(next) < head[1]) return next;
    next = withHeld({ ...next, waiters: rest }, head[0], heldBy(next, head[0]) + head[1]);
  }
}

function pairs(wire: unknown): [string, number][] {
  assert(Array.isArray(wire), 'a list of [session, permits]');
  return wire.map((pair: unknown) => {
    assert(
      Array.isArray(pair) && typeof pair[0] === 'string' && Number.isSafeInteger(pair[1]) && pair[1] > 0,
      'a [session, permits] pair',
    );
    return [pair[0], pair[1]];
  });
}

function checked(state: SemaphoreState): SemaphoreState {
  assert(state.permits >= 0, 'permits >= 0');
  assert(state.holders.every(([, n]) => n > 0) && state.waiters.every(([, n]) => n > 0), 'counts > 0');
  assert(new Set(state.holders.map(([s]) => s)).size === state.holders.length, 'a session holds once');
  assert(new Set(state.waiters.map(([s]) => s)).size === state.waiters.length, 'a session waits once');
  assert(state.waiters.length <= primitiveWaitersMax, 'waiters within primitiveWaitersMax');
  return state;
}
