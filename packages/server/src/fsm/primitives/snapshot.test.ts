import { type Entry, EntryType } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { encodeCommand, type FsmCommand } from '../commands.js';
import { ConclaveFsm } from '../fsm.js';
import { bytes, FsmDriver, reservedRows } from '../testing/driver.js';
import { everyKind, fenceCount, nextFence, reservedRowProblems } from '../testing/primitives.js';
import type { KvEntry } from '../types.js';
import { resultsRowKey } from './rows.js';

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
/** Rows with their values as plain byte arrays: a restored row's value is a view of the snapshot. */
const plain = (rows: readonly KvEntry[]) => rows.map((row) => ({ ...row, value: [...row.value] }));

/** What comes after the populated state: hand-offs, retries, destroys, of every kind. */
function continuation(fence: number): FsmCommand[] {
  const prim = (
    kind: Extract<FsmCommand, { type: 'prim' }>['kind'],
    name: string,
    op: string,
    args: Record<string, unknown> = {},
    session: string | null = null,
    seq: number | null = null,
  ): FsmCommand => ({ type: 'prim', kind, name, op, args, session, seq });
  return [
    prim('lock', 'L', 'release', { fence }),
    // A retry of s1's first call: answered from the restored results row.
    prim('counter', 'C', 'increment', { delta: 5 }, 's1', 1),
    prim('counter', 'C', 'increment', {}, 's1', 50),
    prim('semaphore', 'S', 'release', { permits: 2 }, 's1', 51),
    prim('election', 'E', 'withdraw', { candidate: 'a' }, 's1', 52),
    { type: 'session-destroy', id: 's2' },
    prim('map', 'M', 'put', { key: 'k4', value: bytes('v4'), ephemeral: true }, 's3', 40),
    prim('set', 'T', 'clear', {}, 's3', 41),
    prim('value', 'V', 'compareAndSet', { value: bytes('again'), ifVersion: 0 }),
    { type: 'session-destroy', id: 's3' },
  ];
}

describe('primitives in snapshots', () => {
  it('a state with every kind restores into a fresh FSM with equal snapshot bytes, and goes on identically', () => {
    const d = everyKind();
    const snapshot = d.fsm.snapshot();
    const restored = new ConclaveFsm();
    restored.restore(snapshot);
    expect(same(restored.snapshot(), snapshot)).toBe(true);
    expect(plain(reservedRows(restored))).toEqual(plain(reservedRows(d.fsm)));
    expect(restored.getKey(resultsRowKey('s1'))).not.toBeNull();
    // The fence count comes along: the restored group goes on counting from it.
    expect(fenceCount(restored)).toBe(fenceCount(d.fsm));
    expect(fenceCount(restored)).toBeGreaterThan(0);
    expect(reservedRowProblems(restored)).toEqual([]);

    const { fence, waiters } = d.read('lock', 'L', 'holder').value as { fence: number; waiters: string[] };
    expect(waiters).toEqual(['s2', 's3']);
    const results = continuation(fence).map((command) => {
      const entry: Entry = { term: 1, index: d.next, type: EntryType.Normal, data: encodeCommand(command) };
      d.skip(1);
      const original = d.fsm.apply(entry);
      expect(restored.apply(entry)).toEqual(original);
      expect(same(restored.snapshot(), d.fsm.snapshot())).toBe(true);
      return original;
    });
    // The release handed the lock to the same waiter in both.
    expect(d.read('lock', 'L', 'holder').value).toMatchObject({ session: null });
    expect(results[0]).toMatchObject({ result: { released: true } });
    expect(results[1]).toMatchObject({ result: { value: 5 } });
    expect(reservedRowProblems(restored)).toEqual([]);
  });

  it('after restore, a lock release hands the lock to the same waiter with the same fence', () => {
    const d = everyKind();
    const restored = new FsmDriver();
    restored.fsm.restore(d.fsm.snapshot());
    restored.skip(d.next - 1);
    const { fence } = d.read('lock', 'L', 'holder').value as { fence: number };
    const fresh = nextFence(d);
    expect(nextFence(restored)).toBe(fresh);
    expect(fresh).toBeGreaterThan(fence);
    d.prim('lock', 'L', 'release', { fence });
    restored.prim('lock', 'L', 'release', { fence });
    const holder = restored.read('lock', 'L', 'holder').value;
    expect(holder).toEqual({ session: 's2', fence: fresh, waiters: ['s3'] });
    expect(holder).toEqual(d.read('lock', 'L', 'holder').value);
    expect(fenceCount(restored.fsm)).toBe(fenceCount(d.fsm));
  });

  it('is deterministic: the same entries, replayed whole or after a snapshot taken midway, give identical snapshot bytes', () => {
    const d = everyKind();
    const { fence } = d.read('lock', 'L', 'holder').value as { fence: number };
    for (const command of continuation(fence)) d.apply(command);
    const replica = new FsmDriver();
    for (const entry of d.entries) {
      replica.fsm.apply(entry);
    }
    expect(same(replica.fsm.snapshot(), d.fsm.snapshot())).toBe(true);
    // And from a snapshot taken midway, replaying the rest.
    const half = Math.floor(d.entries.length / 2);
    const prefix = new ConclaveFsm();
    for (const entry of d.entries.slice(0, half)) prefix.apply(entry);
    const resumed = new ConclaveFsm();
    resumed.restore(prefix.snapshot());
    for (const entry of d.entries.slice(half)) resumed.apply(entry);
    expect(same(resumed.snapshot(), d.fsm.snapshot())).toBe(true);
  });
});
