import { describe, expect, it } from 'vitest';
import type { FsmCommand } from '../commands.js';
import { PartsDigest } from '../parts-digest.js';
import { FsmDriver } from '../testing/driver.js';
import { fenceCount, fenceParts, nextFence, reservedRowProblems } from '../testing/primitives.js';
import { fencesRowKey } from './fences.js';

/** A user snapshot of a group where session x holds lock N0, with the group's fence count low. */
function archive(): Uint8Array[] {
  const source = new FsmDriver();
  source.createSession('x');
  source.prim('lock', 'N0', 'acquire', {}, { session: 'x' });
  const parts: Uint8Array[] = [];
  const reader = source.fsm.openSnapshotParts();
  for (let part = reader.next(); part !== null; part = reader.next()) parts.push(part);
  return parts;
}

function restore(d: FsmDriver, parts: readonly Uint8Array[]): void {
  const restoreId = 'r1';
  const commands: FsmCommand[] = [
    { type: 'restore-begin', restoreId },
    ...parts.map((data, seq): FsmCommand => ({ type: 'restore-chunk', restoreId, seq, data })),
    {
      type: 'restore-commit',
      restoreId,
      parts: parts.length,
      bytes: Buffer.concat(parts).length,
      digest: PartsDigest.hexOf(parts),
    },
  ];
  for (const command of commands) expect(d.apply(command)).toMatchObject({ type: 'restore', ok: true });
}

/** A group where one session's end handed `count` locks over in one entry, its fence count ahead of the index. */
function handedOver(count: number): { d: FsmDriver; fences: number[] } {
  const d = new FsmDriver();
  d.createSession('s0');
  d.createSession('w');
  const names = Array.from({ length: count }, (_, i) => `N${i}`);
  for (const name of names) d.prim('lock', name, 'acquire', {}, { session: 's0' });
  for (const name of names) d.prim('lock', name, 'acquire', {}, { session: 'w' });
  d.destroySession('s0');
  const fences = names.map((name) => (d.read('lock', name, 'holder').value as { fence: number }).fence);
  return { d, fences };
}

describe('fences across a user restore', () => {
  it('a restore keeps a count that ran past the index: no fence given before it is given again', () => {
    const parts = archive();
    const { d, fences } = handedOver(20);
    expect(new Set(fences).size).toBe(20);
    const ahead = fenceCount(d.fsm);
    expect(ahead).toBeGreaterThan(d.next + parts.length + 2);
    restore(d, parts);
    // The archive's lock and holder, with the group's count kept.
    expect(d.read('lock', 'N0', 'holder').value).toMatchObject({ session: 'x', waiters: [] });
    expect(fenceCount(d.fsm)).toBe(ahead);
    expect(reservedRowProblems(d.fsm)).toEqual([]);
    const fresh = nextFence(d);
    d.prim('lock', 'N0', 'release', {
      fence: (d.read('lock', 'N0', 'holder').value as { fence: number }).fence,
    });
    expect(d.prim('lock', 'N0', 'acquire', {}, { session: 'x' }).result).toEqual({ fence: fresh });
    expect(fences.every((fence) => fence < fresh)).toBe(true);
    expect(fenceParts(fresh).count).toBe(ahead + 1);
  });

  it('a restore after a count that did not run past the index commits the archive’s count as it is', () => {
    const parts = archive();
    const { d } = handedOver(2);
    const archived = new FsmDriver();
    restore(d, parts);
    restore(archived, parts);
    expect(fenceCount(d.fsm)).toBe(fenceCount(archived.fsm));
    expect(d.fsm.getKey(fencesRowKey)?.value).toEqual(archived.fsm.getKey(fencesRowKey)?.value);
    // The index alone keeps the next fence above every earlier one.
    expect(fenceParts(nextFence(d)).count).toBe(d.next);
  });
});
