import { kvVerbs } from '@conclave/protocol';
import { type Entry, EntryType } from '@conclave/raft';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCommand, type FsmCommand } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { kvRowBytes, sessionRowBytes } from './snapshot-rows.js';
import type { KvOp, KvVerb } from './types.js';

/**
 * Random command histories over a few keys and sessions. Replaying a history, or
 * restoring a snapshot taken midway and replaying the rest, must give the same results
 * and the same snapshot bytes; and the state's invariants hold after every entry.
 */

const keyArb = fc.constantFrom('a', 'a/b', 'a/c', 'b', 'b/a');
const sessionArb = fc.constantFrom('s1', 's2', 's3');
const verbArb = fc.constantFrom<KvVerb>(...kvVerbs);
const opArb = (verbs: fc.Arbitrary<KvVerb>): fc.Arbitrary<KvOp> =>
  fc
    .record({
      verb: verbs,
      key: keyArb,
      value: fc.constantFrom('x', 'y'),
      flags: fc.constantFrom(0, 1),
      index: fc.nat({ max: 30 }),
      session: sessionArb,
    })
    .map(({ verb, key, value, flags, index, session }) => ({
      verb,
      key,
      value: new TextEncoder().encode(value),
      flags,
      index,
      session,
    }));
const writeVerbArb = fc.constantFrom<KvVerb>(
  'set',
  'cas',
  'lock',
  'unlock',
  'delete',
  'delete-tree',
  'delete-cas',
);
const commandArb: fc.Arbitrary<FsmCommand> = fc.oneof(
  { weight: 5, arbitrary: opArb(writeVerbArb).map((op) => ({ type: 'kv' as const, op })) },
  {
    weight: 2,
    arbitrary: fc.array(opArb(verbArb), { maxLength: 4 }).map((ops) => ({ type: 'txn' as const, ops })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ id: sessionArb, behavior: fc.constantFrom('release' as const, 'delete' as const) })
      .map(({ id, behavior }) => ({
        type: 'session-create' as const,
        session: { id, name: '', node: `node-${id}`, ttlSeconds: 0, behavior, lockDelayMs: 10 },
        createIndex: null,
      })),
  },
  { weight: 1, arbitrary: sessionArb.map((id) => ({ type: 'session-destroy' as const, id })) },
);

function checkInvariants(fsm: ConclaveFsm, previous: { kvIndex: number; sessionIndex: number }): void {
  const sessions = new Set(fsm.listSessions({ node: null }).map((s) => s.id));
  for (const entry of fsm.list('')) {
    expect(entry.session === null || sessions.has(entry.session)).toBe(true);
    expect(entry.createIndex).toBeLessThanOrEqual(entry.modifyIndex);
    expect(entry.modifyIndex).toBeLessThanOrEqual(fsm.kvIndex());
    expect(entry.lockIndex > 0 || entry.session === null).toBe(true);
  }
  expect(fsm.kvIndex()).toBeGreaterThanOrEqual(previous.kvIndex);
  expect(fsm.sessionIndex()).toBeGreaterThanOrEqual(previous.sessionIndex);
  // The incremental size equals a recount after every command, whatever the history.
  const recount =
    fsm.list('').reduce((sum, entry) => sum + kvRowBytes(entry), 0) +
    fsm.listSessions({ node: null }).reduce((sum, session) => sum + sessionRowBytes(session), 0);
  expect(fsm.stateBytes).toBe(recount);
}

describe('ConclaveFsm histories', () => {
  it('replay and snapshot+replay agree byte for byte, and invariants hold', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 40 }), fc.nat(), (commands, cut) => {
        const entries: Entry[] = commands.map((command, i) => ({
          term: 1,
          index: i + 1,
          type: EntryType.Normal,
          data: encodeCommand(command),
        }));
        const split = cut % entries.length;
        const original = new ConclaveFsm();
        const results = entries.map((entry) => {
          const previous = { kvIndex: original.kvIndex(), sessionIndex: original.sessionIndex() };
          const result = original.apply(entry);
          checkInvariants(original, previous);
          return result;
        });
        const replica = new ConclaveFsm();
        for (const entry of entries.slice(0, split)) replica.apply(entry);
        const restored = new ConclaveFsm();
        restored.restore(replica.snapshot());
        const tail = entries.slice(split).map((entry) => restored.apply(entry));
        expect(tail).toEqual(results.slice(split));
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
