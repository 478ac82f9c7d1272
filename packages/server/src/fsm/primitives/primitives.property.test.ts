import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FsmCommand, FsmResult } from '../commands.js';
import { ConclaveFsm } from '../fsm.js';
import { kvRowBytes, sessionRowBytes } from '../snapshot-rows.js';
import { FsmDriver, reservedRows } from '../testing/driver.js';
import { fenceCount, fenceParts, primitiveState, reservedRowProblems } from '../testing/primitives.js';
import { fenceGroupStride } from './fences.js';
import type { LockState } from './lock.js';
import { primitiveRowKey } from './rows.js';
import type { SemaphoreState } from './semaphore.js';

/**
 * Random histories of lock and semaphore calls by a few sessions that come and go, some
 * calls retried with the same seq. After every entry: a lock has one holder, never waiting
 * for it, and at every change of hands it takes a new fence of the group, above every fence
 * the group gave before (two locks handed over by one entry take two); a semaphore's
 * sessions hold no more than its permits, unless setPermits cut them (then the held only
 * shrink until they fit), and its first waiter does not fit; every hold and results row names a live session
 * and matches the state. Replaying the entries, whole or from a snapshot taken midway,
 * gives the same results and snapshot bytes.
 */

const sessions = ['s1', 's2', 's3', 's4'] as const;
const locks = ['L1', 'L2'] as const;
const semaphores = ['S1'] as const;

type Step =
  | { readonly kind: 'create' | 'destroy'; readonly session: string }
  | {
      readonly kind: 'lock';
      readonly op: 'tryAcquire' | 'acquire' | 'cancel';
      readonly name: string;
      readonly session: string;
    }
  | {
      readonly kind: 'release';
      readonly name: string;
      /** The lock's fence now, an earlier one of it, the other lock's now, or any fence-like number. */
      readonly fence: 'current' | 'stale' | 'other' | number;
      /** Released by a session (with a seq), or by fence alone. */
      readonly session: string | null;
    }
  | { readonly kind: 'setPermits'; readonly name: string; readonly permits: number }
  | {
      readonly kind: 'semaphore';
      readonly op: 'tryAcquire' | 'acquire' | 'cancel' | 'release' | 'drain';
      readonly name: string;
      readonly session: string;
      readonly permits: number;
    }
  /** The last call made with a seq, sent again as is (a client's retry). */
  | { readonly kind: 'retry' };

const sessionArb = fc.constantFrom(...sessions);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create' as const), session: sessionArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), session: sessionArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('lock' as const),
      op: fc.constantFrom('tryAcquire' as const, 'acquire' as const, 'acquire' as const, 'cancel' as const),
      name: fc.constantFrom(...locks),
      session: sessionArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('release' as const),
      name: fc.constantFrom(...locks),
      fence: fc.oneof(
        { weight: 4, arbitrary: fc.constant('current' as const) },
        { weight: 1, arbitrary: fc.constant('stale' as const) },
        { weight: 1, arbitrary: fc.constant('other' as const) },
        {
          // A count near the indexes a history reaches, in this group or a neighbour.
          weight: 1,
          arbitrary: fc
            .tuple(fc.integer({ min: 1, max: 120 }), fc.constantFrom(0, 0, 1, fenceGroupStride - 1))
            .map(([count, group]) => count * fenceGroupStride + group),
        },
      ),
      session: fc.option(sessionArb),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('setPermits' as const),
      name: fc.constantFrom(...semaphores),
      permits: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 2, max: 5 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 1 }) },
      ),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('semaphore' as const),
      op: fc.constantFrom(
        'tryAcquire' as const,
        'acquire' as const,
        'acquire' as const,
        'cancel' as const,
        'release' as const,
        'drain' as const,
      ),
      name: fc.constantFrom(...semaphores),
      session: sessionArb,
      permits: fc.constantFrom(1, 1, 2, 3),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'retry' as const }) },
);

function lockState(fsm: ConclaveFsm, name: string): LockState | null {
  const row = fsm.getKey(primitiveRowKey({ kind: 'lock', name }));
  return row === null ? null : (primitiveState(row).state as LockState);
}

function semaphoreState(fsm: ConclaveFsm, name: string): SemaphoreState | null {
  const row = fsm.getKey(primitiveRowKey({ kind: 'semaphore', name }));
  return row === null ? null : (primitiveState(row).state as SemaphoreState);
}

const heldIn = (state: SemaphoreState | null) => (state?.holders ?? []).reduce((sum, [, n]) => sum + n, 0);

/** Makes each step's command against the state now, numbering each session's calls. */
class Caller {
  private readonly seqs = new Map<string, number>();
  private lastWithSeq: FsmCommand | null = null;

  constructor(
    private readonly fsm: ConclaveFsm,
    private readonly fences: ReadonlyMap<string, readonly number[]>,
  ) {}

  /** A release names the lock's fence now, an earlier one of `fences`, the other lock's, or any number. */
  command(step: Step): FsmCommand {
    switch (step.kind) {
      case 'create':
        return {
          type: 'session-create',
          session: {
            id: step.session,
            name: '',
            node: 'n',
            ttlSeconds: 0,
            behavior: 'release',
            lockDelayMs: 0,
          },
          createIndex: null,
        };
      case 'destroy':
        return { type: 'session-destroy', id: step.session };
      case 'retry':
        return this.lastWithSeq ?? { type: 'session-destroy', id: 'nobody' };
      case 'lock':
        return this.call({ kind: 'lock', name: step.name, op: step.op, args: {}, session: step.session });
      case 'release': {
        const current = lockState(this.fsm, step.name)?.holder?.fence ?? null;
        const stale = (this.fences.get(step.name) ?? []).filter((fence) => fence !== current).at(-1) ?? null;
        const otherName = locks.find((name) => name !== step.name) as string;
        const other = lockState(this.fsm, otherName)?.holder?.fence ?? null;
        const fence =
          typeof step.fence === 'number'
            ? step.fence
            : step.fence === 'current'
              ? (current ?? stale ?? 1)
              : step.fence === 'stale'
                ? (stale ?? current ?? 1)
                : (other ?? stale ?? 1);
        return this.call({
          kind: 'lock',
          name: step.name,
          op: 'release',
          args: { fence },
          session: step.session,
        });
      }
      case 'setPermits':
        return this.call({
          kind: 'semaphore',
          name: step.name,
          op: 'setPermits',
          args: { permits: step.permits },
          session: null,
        });
      case 'semaphore':
        return this.call({
          kind: 'semaphore',
          name: step.name,
          op: step.op,
          args: step.op === 'cancel' || step.op === 'drain' ? {} : { permits: step.permits },
          session: step.session,
        });
    }
  }

  private call(options: Omit<Extract<FsmCommand, { type: 'prim' }>, 'type' | 'seq'>): FsmCommand {
    const { session } = options;
    if (session === null) return { type: 'prim', ...options, seq: null };
    const seq = (this.seqs.get(session) ?? 0) + 1;
    this.seqs.set(session, seq);
    this.lastWithSeq = { type: 'prim', ...options, seq };
    return this.lastWithSeq;
  }
}

interface Before {
  readonly locks: readonly (LockState | null)[];
  readonly held: readonly number[];
  /** The group's fence count. */
  readonly fenceCount: number;
}

/** Asserts the locks' and semaphores' invariants after one more entry, at `index`. */
function checkInvariants(options: {
  fsm: ConclaveFsm;
  index: number;
  before: Before;
  fences: Map<string, number[]>;
}): void {
  const { fsm, index, before, fences } = options;
  const live = new Set(fsm.listSessions({ node: null }).map((s) => s.id));
  /** The fences this entry gave, to the locks that changed hands. */
  const given: number[] = [];
  locks.forEach((name, i) => {
    const lock = lockState(fsm, name);
    const was = before.locks[i]?.holder ?? null;
    const holder = lock?.holder ?? null;
    const waiters = lock?.waiters ?? [];
    expect(new Set(waiters).size).toBe(waiters.length);
    for (const waiter of waiters) expect(live.has(waiter)).toBe(true);
    if (holder === null) {
      expect(waiters).toEqual([]);
      return;
    }
    // One holder, never also waiting, and live.
    expect(waiters.includes(holder.session)).toBe(false);
    expect(live.has(holder.session)).toBe(true);
    if (was === null || was.session !== holder.session || was.fence !== holder.fence) {
      // A change of hands: a new fence of this group, above every earlier fence of the lock.
      const seen = fences.get(name) ?? [];
      expect(fenceParts(holder.fence).group).toBe(0);
      expect(fenceParts(holder.fence).count).toBeGreaterThanOrEqual(index);
      expect(seen.every((fence) => fence < holder.fence)).toBe(true);
      fences.set(name, [...seen, holder.fence]);
      given.push(holder.fence);
    }
  });
  // The fences given are each another, counted on from the group's last count (and never
  // below the entry's index); an entry that gave none leaves the count alone.
  const first = Math.max(before.fenceCount + 1, index);
  given.sort((a, b) => a - b);
  expect(given).toEqual(given.map((_, i) => (first + i) * fenceGroupStride));
  expect(fenceCount(fsm)).toBe(given.length === 0 ? before.fenceCount : first + given.length - 1);
  semaphores.forEach((name, i) => {
    const semaphore = semaphoreState(fsm, name);
    const held = heldIn(semaphore);
    const permits = semaphore?.permits ?? 0;
    // Within the permits, unless setPermits cut them: then what is held only shrinks until it fits.
    expect(held).toBeLessThanOrEqual(Math.max(permits, before.held[i] ?? 0));
    // Served in order: the first waiter waits only while it does not fit.
    const [head] = semaphore?.waiters ?? [];
    if (head !== undefined) expect(permits - held).toBeLessThan(head[1]);
    for (const [session] of [...(semaphore?.holders ?? []), ...(semaphore?.waiters ?? [])]) {
      expect(live.has(session)).toBe(true);
    }
  });
  // Holds and results rows: exactly the live sessions the states name; none of a destroyed one.
  expect(reservedRowProblems(fsm)).toEqual([]);
  // The state's incremental size counts the reserved rows too.
  const rows = [...fsm.list(''), ...reservedRows(fsm)];
  const recount =
    rows.reduce((sum, row) => sum + kvRowBytes(row), 0) +
    fsm.listSessions({ node: null }).reduce((sum, s) => sum + sessionRowBytes(s), 0);
  expect(fsm.stateBytes).toBe(recount);
}

/** Runs a history (after creating every session), checking after each entry; returns the driver and results. */
function run(steps: readonly Step[]): { d: FsmDriver; results: FsmResult[] } {
  const d = new FsmDriver();
  const fences = new Map<string, number[]>();
  const caller = new Caller(d.fsm, fences);
  const results: FsmResult[] = [];
  /** The step that last created or destroyed each session id: one life of it. */
  const lives = new Map<string, Step>();
  const answers = new Map<string, { life: Step | undefined; answer: unknown }>();
  const opening: Step[] = sessions.map((session) => ({ kind: 'create', session }));
  for (const step of [...opening, ...steps]) {
    const before: Before = {
      locks: locks.map((name) => lockState(d.fsm, name)),
      held: semaphores.map((name) => heldIn(semaphoreState(d.fsm, name))),
      fenceCount: fenceCount(d.fsm),
    };
    const command = caller.command(step);
    const result = d.apply(command);
    results.push(result);
    if (command.type === 'session-create') lives.set(command.session.id, step);
    if (command.type === 'session-destroy') lives.set(command.id, step);
    if (command.type === 'prim' && command.session !== null && result.type === 'prim') {
      // Exactly once: in one life of the session, a seq is always answered as it was first.
      const call = `${command.session}/${command.seq}`;
      const first = answers.get(call);
      const life = lives.get(command.session);
      const answer = { result: result.result, error: result.error };
      if (first !== undefined && first.life === life) expect(answer).toEqual(first.answer);
      else if (result.error?.code !== 'SESSION_EXPIRED') answers.set(call, { life, answer });
    }
    checkInvariants({ fsm: d.fsm, index: d.next - 1, before, fences });
  }
  return { d, results };
}

describe('lock and semaphore histories', () => {
  it('keep their invariants after every entry, answer retries once, and replay identically', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 100, size: 'max' }),
        fc.nat(),
        (steps, cut) => {
          const { d, results } = run(steps);
          // Replayed from a snapshot taken midway: the same results and snapshot bytes.
          const split = cut % d.entries.length;
          const prefix = new ConclaveFsm();
          for (const entry of d.entries.slice(0, split)) prefix.apply(entry);
          const resumed = new ConclaveFsm();
          resumed.restore(prefix.snapshot());
          const tail = d.entries.slice(split).map((entry) => resumed.apply(entry));
          expect(tail).toEqual(results.slice(split));
          expect(Buffer.from(resumed.snapshot()).equals(Buffer.from(d.fsm.snapshot()))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
