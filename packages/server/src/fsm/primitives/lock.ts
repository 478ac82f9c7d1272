import { primitiveWaitersMax } from '@conclave/protocol';
import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/**
 * A fair lock with fencing. Each grant takes a new fence (fences.ts): it grows every time
 * the lock changes hands, survives restarts and failovers, no other lock ever has it, and
 * a resource that remembers the highest fence it saw can refuse a holder that lost the lock.
 * Waiters are served first come, first served.
 */
export interface LockState {
  readonly holder: { readonly session: string; readonly fence: number } | null;
  /** Sessions waiting, first in line first; never the holder, never twice. */
  readonly waiters: readonly string[];
}

export const lockKind: KindMachine<LockState> = {
  eventOp: 'holder',
  args: {
    tryAcquire: {},
    acquire: {},
    cancel: {},
    release: { fence: 'count' },
    holder: {},
  },
  sessionOps: new Set(['tryAcquire', 'acquire', 'cancel']),
  encodeState: (state) => [state.holder?.session ?? null, state.holder?.fence ?? null, state.waiters],
  decodeState(wire) {
    assert(Array.isArray(wire) && wire.length === 3, 'a lock row is [holder, fence, waiters]');
    const [session, fence, waiters] = wire as unknown[];
    assert((session === null) === (fence === null), 'a lock has a holder iff a fence');
    assert(session === null || typeof session === 'string', 'a holder is a session id');
    assert(fence === null || Number.isSafeInteger(fence), 'a fence is an integer');
    assert(Array.isArray(waiters) && waiters.every((w) => typeof w === 'string'), 'waiters are session ids');
    const holder = session === null ? null : { session: session as string, fence: fence as number };
    return checked({ holder, waiters: waiters as string[] });
  },
  apply(op, { state, args, fence, session }): KindOutcome<LockState> {
    const lock = state ?? { holder: null, waiters: [] };
    switch (op) {
      case 'tryAcquire':
      case 'acquire': {
        assert(session !== null, 'acquiring takes a session');
        if (lock.holder?.session === session) return unchanged({ fence: lock.holder.fence });
        if (lock.holder === null) return granted({ lock, session, fence: fence() });
        if (op === 'tryAcquire' || lock.waiters.includes(session)) {
          return unchanged({ fence: null, position: lock.waiters.indexOf(session) + 1 });
        }
        if (lock.waiters.length >= primitiveWaitersMax) {
          return refuse('OVERLOADED', `${primitiveWaitersMax} sessions wait for this lock already`);
        }
        const waiters = [...lock.waiters, session];
        return {
          ok: true,
          state: checked({ ...lock, waiters }),
          result: { fence: null, position: waiters.length },
        };
      }
      case 'cancel': {
        assert(session !== null, 'cancelling takes a session');
        // The grant may have come first: the caller learns it holds the lock after all.
        if (lock.holder?.session === session) return unchanged({ fence: lock.holder.fence });
        if (!lock.waiters.includes(session)) return unchanged({ fence: null });
        const waiters = lock.waiters.filter((w) => w !== session);
        return { ok: true, state: checked({ ...lock, waiters }), result: { fence: null } };
      }
      case 'release': {
        const sent = args.fence as number;
        if (lock.holder?.fence !== sent) {
          return refuse(
            'LOCK_NOT_HELD',
            lock.holder === null
              ? `the lock is free: fence ${sent} no longer holds it`
              : `fence ${sent} does not hold the lock (its holder has fence ${lock.holder.fence})`,
          );
        }
        return { ok: true, state: handOver({ lock, fence }), result: { released: true } };
      }
      default:
        assert(false, () => `lock has no write ${op}`);
    }
  },
  read(op, { state }) {
    assert(op === 'holder', () => `lock has no read ${op}`);
    return {
      session: state?.holder?.session ?? null,
      fence: state?.holder?.fence ?? null,
      waiters: state?.waiters ?? [],
    };
  },
  sessionsOf: (state) => (state.holder === null ? state.waiters : [state.holder.session, ...state.waiters]),
  sessionGone(state, { session, fence }) {
    if (state.holder?.session === session) return handOver({ lock: state, fence });
    return checked({ ...state, waiters: state.waiters.filter((w) => w !== session) });
  },
};

function granted(options: { lock: LockState; session: string; fence: number }): KindOutcome<LockState> {
  const { lock, session, fence } = options;
  const state = checked({
    holder: { session, fence },
    waiters: lock.waiters.filter((w) => w !== session),
  });
  return { ok: true, state, result: { fence } };
}

/** The lock once its holder is gone: the first waiter holds it, with a new fence. */
function handOver(options: { lock: LockState; fence: () => number }): LockState {
  const [next, ...rest] = options.lock.waiters;
  if (next === undefined) return checked({ holder: null, waiters: [] });
  return checked({ holder: { session: next, fence: options.fence() }, waiters: rest });
}

function checked(state: LockState): LockState {
  assert(
    state.holder === null || !state.waiters.includes(state.holder.session),
    'a lock holder never waits for it',
  );
  assert(new Set(state.waiters).size === state.waiters.length, 'a session waits once');
  assert(state.waiters.length <= primitiveWaitersMax, 'waiters within primitiveWaitersMax');
  return state;
}
