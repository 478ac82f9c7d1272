import { assert } from '@conclave/raft';
import { type KindMachine, type KindOutcome, refuse, unchanged } from './kind.js';

/** A counter: one safe integer, 0 until first written. */
export interface CounterState {
  readonly value: number;
}

const noSessions: readonly string[] = [];

export const counterKind: KindMachine<CounterState> = {
  eventOp: 'get',
  args: {
    get: {},
    set: { value: 'int', ifVersion: 'index?' },
    increment: { delta: 'int?', ifVersion: 'index?' },
    decrement: { delta: 'int?', ifVersion: 'index?' },
    compareAndSet: { expect: 'int', update: 'int' },
  },
  sessionOps: new Set(),
  encodeState: (state) => state.value,
  decodeState(wire) {
    assert(Number.isSafeInteger(wire), 'a counter row holds a safe integer');
    return { value: wire as number };
  },
  apply(op, { state, args, index }): KindOutcome<CounterState> {
    const current = state?.value ?? 0;
    switch (op) {
      case 'set':
        return wrote({ value: args.value as number, index });
      case 'increment':
      case 'decrement': {
        const delta = (args.delta as number | undefined) ?? 1;
        const next = op === 'increment' ? current + delta : current - delta;
        if (!Number.isSafeInteger(next)) {
          return refuse(
            'COUNTER_OVERFLOW',
            `${current} ${op === 'increment' ? '+' : '-'} ${delta} is beyond ±(2^53 - 1)`,
          );
        }
        return wrote({ value: next, index });
      }
      case 'compareAndSet':
        if (current !== args.expect) return unchanged({ ok: false, value: current });
        return {
          ok: true,
          state: { value: args.update as number },
          result: { ok: true, value: args.update, version: index },
        };
      default:
        assert(false, () => `counter has no write ${op}`);
    }
  },
  read(op, { state, version }) {
    assert(op === 'get', () => `counter has no read ${op}`);
    return { value: state?.value ?? 0, version };
  },
  sessionsOf: () => noSessions,
  sessionGone: (state) => state,
};

function wrote(options: { value: number; index: number }): KindOutcome<CounterState> {
  return {
    ok: true,
    state: { value: options.value },
    result: { value: options.value, version: options.index },
  };
}
