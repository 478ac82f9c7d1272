import { createHash } from 'node:crypto';
import { RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeCommand, encodeCommand, type FsmCommand, type FsmResult } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { PartsDigest } from './parts-digest.js';
import { restoreChunkBytesMax } from './restore-wire.js';
import { decodeSnapshot } from './snapshot-codec.js';
import { FsmDriver, text, userSnapshotParts } from './testing/driver.js';

/** The SHA-256 of the whole bytes: what a version 3 snapshot recorded, and a digest the commit never matches. */
const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A source group's state as user snapshot parts: keys, a lock held by a session; applied far past a fresh log. */
function sourceParts(keys = 40): Uint8Array[] {
  return userSnapshotParts({ keys, skipEntries: 500 });
}

function restoreResult(result: FsmResult): { ok: boolean; error: string | null } {
  if (result.type !== 'restore') throw new Error(`expected a restore result, got ${result.type}`);
  return result;
}

function steps(parts: readonly Uint8Array[], restoreId = 'r1'): FsmCommand[] {
  const whole = Buffer.concat(parts);
  return [
    { type: 'restore-begin', restoreId },
    ...parts.map((data, seq): FsmCommand => ({ type: 'restore-chunk', restoreId, seq, data })),
    {
      type: 'restore-commit',
      restoreId,
      parts: parts.length,
      bytes: whole.length,
      digest: PartsDigest.hexOf(parts),
    },
  ];
}

function applyAll(d: FsmDriver, commands: readonly FsmCommand[]) {
  return commands.map((command) => restoreResult(d.apply(command)));
}

/** A driver holding one key of its own, to show a refused restore changed nothing. */
function target(): { d: FsmDriver; before: number } {
  const d = new FsmDriver();
  d.set('old', 'kept');
  return { d, before: d.fsm.kvIndex() };
}

function expectUnchanged(options: { d: FsmDriver; before: number }): void {
  const { d, before } = options;
  expect(text(d.fsm.getKey('old')?.value)).toBe('kept');
  expect(d.fsm.list('a/')).toHaveLength(0);
  expect(d.fsm.kvIndex()).toBe(before);
  // The group keeps serving writes.
  expect(d.kv({ verb: 'set', key: 'after', value: new Uint8Array([1]) }).ok).toBe(true);
}

describe('restore through Raft commands', () => {
  it('carries a restore in progress in the FSM snapshot as decoded rows, so a server that installs it mid-restore commits the same state', () => {
    const parts = sourceParts();
    expect(parts.length).toBeGreaterThan(4);
    const commands = steps(parts);
    const half = Math.floor(commands.length / 2);
    const leader = new FsmDriver();
    for (const result of applyAll(leader, commands.slice(0, half))) expect(result.ok).toBe(true);
    // A lagging follower installs the leader's snapshot taken between two chunks.
    const midway = leader.fsm.snapshot();
    expect(decodeSnapshot(midway).restoreStaging?.progress?.kvs.flat().length).toBeGreaterThan(0);
    const follower = new FsmDriver();
    follower.fsm.restore(midway);
    expect(Buffer.from(follower.fsm.snapshot()).equals(Buffer.from(midway))).toBe(true);
    follower.skip(leader.next - follower.next);
    for (const command of commands.slice(half)) {
      expect(restoreResult(leader.apply(command)).ok).toBe(true);
      expect(restoreResult(follower.apply(command)).ok).toBe(true);
    }
    expect(Buffer.from(follower.fsm.snapshot()).equals(Buffer.from(leader.fsm.snapshot()))).toBe(true);
    expect(follower.fsm.list('a/')).toHaveLength(40);
  });

  it('a server that installed a snapshot mid-restore refuses a wrong digest and accepts the right one like the others (the chained digest travels)', () => {
    const parts = sourceParts(8);
    const commands = steps(parts);
    const commit = commands.at(-1);
    if (commit?.type !== 'restore-commit') throw new Error('the last step is the commit');
    const wrong: FsmCommand = { ...commit, digest: PartsDigest.hexOf([new Uint8Array([1])]) };
    // Accepting the right digest too shows the follower's verdict comes from the carried chain,
    // not from refusing every commit after an install.
    for (const last of [wrong, commit]) {
      const leader = new FsmDriver();
      applyAll(leader, commands.slice(0, 3));
      const follower = new FsmDriver();
      follower.fsm.restore(leader.fsm.snapshot());
      follower.skip(leader.next - follower.next);
      for (const command of [...commands.slice(3, -1), last]) {
        expect(restoreResult(follower.apply(command))).toEqual(restoreResult(leader.apply(command)));
      }
      const restored = last === commit ? 8 : 0;
      expect(leader.fsm.list('a/')).toHaveLength(restored);
      expect(follower.fsm.list('a/')).toHaveLength(restored);
    }
  });

  it('replaces every table at the commit, clamps future indexes to it, and wakes watchers', () => {
    const { d } = target();
    let woken = 0;
    d.fsm.watch({ keys: ['unrelated'] }, () => woken++);
    expect(applyAll(d, steps(sourceParts())).every((r) => r.ok)).toBe(true);
    const commitIndex = d.next - 1;
    expect(woken).toBe(1);
    expect(d.fsm.getKey('old')).toBeNull();
    expect(d.fsm.list('a/')).toHaveLength(40);
    expect(text(d.fsm.getKey('a/3')?.value).startsWith('v3.')).toBe(true);
    expect(d.fsm.getKey('lock')?.session).toBe('s1');
    expect(d.fsm.getSession('s1')?.node).toBe('n1');
    expect(d.fsm.kvIndex()).toBe(commitIndex);
    expect(d.fsm.appliedIndex()).toBe(commitIndex);
    // Indexes from the source's log (past 500) would be in this log's future.
    for (const e of d.fsm.list('')) expect(e.modifyIndex).toBeLessThanOrEqual(commitIndex);
    // Writes go on after it as usual.
    expect(d.set('after', 'x')).toBe(commitIndex + 1);
  });

  it('refuses, and changes nothing, on a chunk out of order, a missing chunk, a wrong size or sum, or another restore begun', () => {
    const parts = sourceParts(8);
    const all = steps(parts);
    const commit = all.at(-1);
    if (commit?.type !== 'restore-commit') throw new Error('the last step is the commit');
    const cases: FsmCommand[][] = [
      // The second chunk skipped: refused at the third, and the commit finds nothing staged.
      all.filter((c) => !(c.type === 'restore-chunk' && c.seq === 1)),
      // The last chunk never arrives.
      [...all.slice(0, -2), commit],
      // The commit announces another size, or another sum.
      [...all.slice(0, -1), { ...commit, bytes: commit.bytes + 1 }],
      [...all.slice(0, -1), { ...commit, digest: sha(Buffer.concat(parts)) }],
      // Another restore began meanwhile: the first's commit is refused.
      [...all.slice(0, -1), ...steps(parts, 'r2').slice(0, 1), commit],
      // Aborted: nothing is staged any more.
      [...all.slice(0, -1), { type: 'restore-abort', restoreId: 'r1' }, commit],
    ];
    for (const commands of cases) {
      const t = target();
      const results = applyAll(t.d, commands);
      expect(results.at(-1)?.ok).toBe(false);
      expect(results.at(-1)?.error).toMatch(/r1/u);
      expectUnchanged(t);
    }
  });

  it('refuses a malformed chunk at once, deterministically, and drops the staging', () => {
    const parts = sourceParts(8);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const malformed: Uint8Array[] = [
      new Uint8Array([0xc1]), // not msgpack
      Buffer.concat([packr.pack([]), packr.pack([])]), // two values
      packr.pack([['k', 'not bytes', 0, 1, 1, 0, null]]), // a bad row
      packr.pack({ a: 1 }), // not a row chunk
    ];
    for (const data of malformed) {
      const runs = [target(), target()].map((t) => {
        const results = applyAll(t.d, [
          ...steps(parts).slice(0, 2),
          { type: 'restore-chunk', restoreId: 'r1', seq: 1, data },
          ...steps(parts).slice(3),
        ]);
        expectUnchanged(t);
        return results;
      });
      const [first, second] = runs;
      expect(first?.[2]?.ok).toBe(false);
      expect(first?.[2]?.error).toMatch(/^restore r1: /u);
      // Every later step is refused: the staging is gone.
      expect(first?.slice(3).every((r) => !r.ok)).toBe(true);
      expect(second).toEqual(first);
    }
    // A header with a restore in progress of its own is refused too.
    const t = target();
    const header = packr.pack([4, 1, 1, 0, 0, 0, null, ['x', 0, [new Uint8Array(32), 0], null]]);
    const results = applyAll(t.d, [
      { type: 'restore-begin', restoreId: 'r1' },
      { type: 'restore-chunk', restoreId: 'r1', seq: 0, data: header },
    ]);
    expect(results[1]?.error).toMatch(/restore in progress/u);
    expectUnchanged(t);
  });

  it('a new begin drops the staging of the one before, and a restore with no keys empties the group', () => {
    const empty = new FsmDriver();
    const reader = empty.fsm.openSnapshotParts();
    const emptyParts: Uint8Array[] = [];
    for (let part = reader.next(); part !== null; part = reader.next()) emptyParts.push(part);
    expect(emptyParts).toHaveLength(1);
    const { d } = target();
    const results = applyAll(d, [...steps(sourceParts(4)).slice(0, 3), ...steps(emptyParts, 'r2')]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(d.fsm.list('')).toEqual([]);
    expect(d.fsm.listSessions({ node: null })).toEqual([]);
  });

  it('loads a version 3 snapshot whose restore staged raw chunks, as decoded rows the new commit accepts', () => {
    const parts = sourceParts(6);
    const whole = Buffer.concat(parts);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const v3 = (chunks: Uint8Array[]) =>
      packr.pack([3, 7, 7, 0, 0, 0, null, ['r1', whole.length, sha(whole), chunks.length, chunks]]);
    const slices = (upTo: number) => {
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < upTo; at += 1000) chunks.push(whole.subarray(at, Math.min(at + 1000, upTo)));
      return chunks;
    };
    const commit: FsmCommand = {
      type: 'restore-commit',
      restoreId: 'r1',
      parts: parts.length,
      bytes: whole.length,
      digest: PartsDigest.hexOf(parts),
    };
    // Every byte staged, in slices that cut across parts.
    const d = new FsmDriver();
    d.fsm.restore(v3(slices(whole.length)));
    d.skip(7);
    expect(restoreResult(d.apply(commit)).ok).toBe(true);
    expect(d.fsm.list('a/')).toHaveLength(6);
    // Staged up to the middle of a part: no whole parts to load, so no staging at all.
    const cut = new FsmDriver();
    cut.fsm.restore(v3(slices((parts[0]?.length ?? 0) + 10)));
    cut.skip(7);
    expect(restoreResult(cut.apply(commit)).error).toMatch(/not staged/u);
    expect(cut.fsm.list('')).toEqual([]);
  });

  it('encodes restore commands exactly and asserts on an oversized chunk', () => {
    const fsm = new ConclaveFsm();
    // A plain Uint8Array, as the decoder gives back.
    const parts = [new Uint8Array(fsm.openSnapshotParts().next() ?? [])];
    const commands: FsmCommand[] = [...steps(parts), { type: 'restore-abort', restoreId: 'r1' }];
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual(command);
    const tooLarge: FsmCommand = {
      type: 'restore-chunk',
      restoreId: 'r',
      seq: 0,
      data: new Uint8Array(restoreChunkBytesMax + 1),
    };
    expect(() => encodeCommand(tooLarge)).toThrow(RaftInvariantError);
    expect(() =>
      encodeCommand({
        type: 'restore-commit',
        restoreId: 'r',
        parts: 0,
        bytes: 0,
        digest: PartsDigest.hexOf([]),
      }),
    ).toThrow(RaftInvariantError);
  });
});
