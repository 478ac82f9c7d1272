import { RaftInvariantError, defaultLimits as raftLimits } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { commandVersion, decodeCommand, encodeCommand, type FsmCommand, type FsmResult } from './commands.js';
import { PartsDigest } from './parts-digest.js';
import {
  restoreBatchBytesMax,
  restoreBatchPartsMax,
  restoreChunkBytesMax,
  restoreIdBytesMax,
} from './restore-wire.js';
import { FsmDriver, text, userSnapshotParts } from './testing/driver.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** A source group's state as user snapshot parts: a session holding a lock, and `keys` keys of 100 KiB values. */
function sourceParts(keys = 12): Uint8Array[] {
  return userSnapshotParts({ keys, skipEntries: 0 });
}

const begin = (restoreId = 'r1'): FsmCommand => ({ type: 'restore-begin', restoreId });
const batch = (seq: number, parts: readonly Uint8Array[], restoreId = 'r1'): FsmCommand => ({
  type: 'restore-batch',
  restoreId,
  seq,
  parts,
});
const chunk = (seq: number, data: Uint8Array, restoreId = 'r1'): FsmCommand => ({
  type: 'restore-chunk',
  restoreId,
  seq,
  data,
});
const commit = (parts: readonly Uint8Array[], restoreId = 'r1'): FsmCommand => ({
  type: 'restore-commit',
  restoreId,
  parts: parts.length,
  bytes: Buffer.concat(parts).length,
  digest: PartsDigest.hexOf(parts),
});

/** The parts cut into batches of `size` consecutive parts. */
function batches(parts: readonly Uint8Array[], size: number, restoreId = 'r1'): FsmCommand[] {
  const commands: FsmCommand[] = [];
  for (let seq = 0; seq < parts.length; seq += size) {
    commands.push(batch(seq, parts.slice(seq, seq + size), restoreId));
  }
  return commands;
}

function restoreResult(result: FsmResult): { ok: boolean; error: string | null } {
  if (result.type !== 'restore') throw new Error(`expected a restore result, got ${result.type}`);
  return result;
}

/** A group holding one key of its own, to show a refused restore changed nothing. */
function target(): FsmDriver {
  const d = new FsmDriver();
  d.set('old', 'kept');
  return d;
}

const applyAll = (d: FsmDriver, commands: readonly FsmCommand[]) =>
  commands.map((command) => restoreResult(d.apply(command)));

/** What a restore must carry over, in key order. */
const contents = (d: FsmDriver) => ({
  kvs: d.fsm.list('').map((e) => [e.key, text(e.value), e.flags, e.session]),
  sessions: d.fsm.listSessions({ node: null }).map((s) => [s.id, s.node]),
});

describe('a restore-batch entry: several consecutive parts of one group in one Raft entry', () => {
  it('stages its parts in order, as that many chunks would, and commits the same state', () => {
    const parts = sourceParts();
    expect(parts.length).toBeGreaterThan(4);
    const byChunk = target();
    expect(applyAll(byChunk, [begin(), ...parts.map((p, seq) => chunk(seq, p)), commit(parts)])).toSatisfy(
      (results: { ok: boolean }[]) => results.every((r) => r.ok),
    );
    for (const size of [2, 3]) {
      const d = target();
      const staged: number[] = [];
      for (const command of [begin(), ...batches(parts, size)]) {
        expect(restoreResult(d.apply(command)).ok).toBe(true);
        staged.push(d.fsm.stagedRestore()?.parts ?? -1);
      }
      // Each entry stages all of its parts at once.
      expect(staged).toEqual([
        0,
        ...batches(parts, size).map((_, i) => Math.min((i + 1) * size, parts.length)),
      ]);
      expect(restoreResult(d.apply(commit(parts))).ok).toBe(true);
      expect(contents(d)).toEqual(contents(byChunk));
      expect(d.fsm.getKey('old')).toBeNull();
    }
  });

  it('refuses a batch whose parts are out of order, or that starts at another seq, and drops the staging', () => {
    const parts = sourceParts();
    const [p0, p1, p2, p3] = parts as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    const cases: Record<string, FsmCommand[]> = {
      // Parts 2 and 1 swapped within the entry: the digest chains them in the order given.
      'swapped within': [begin(), batch(0, [p0]), batch(1, [p2, p1]), batch(3, parts.slice(3))],
      'a seq skipped': [begin(), batch(0, [p0, p1]), batch(3, [p3]), batch(2, parts.slice(2))],
      'a part sent twice': [begin(), batch(0, [p0, p1]), batch(1, [p1, p2]), batch(3, parts.slice(3))],
    };
    for (const [name, commands] of Object.entries(cases)) {
      const d = target();
      const results = applyAll(d, [...commands, commit(parts)]);
      const refused = results.findIndex((r) => !r.ok);
      expect(refused, name).toBeGreaterThan(0);
      // Once refused, the staging is gone: every later step, the commit too, is refused.
      expect(
        results.slice(refused).every((r) => !r.ok),
        name,
      ).toBe(true);
      expect(results.at(-1)?.error, name).toMatch(/r1/u);
      expect(text(d.fsm.getKey('old')?.value), name).toBe('kept');
      expect(d.fsm.list('a/'), name).toEqual([]);
    }
    // Seq and order alike: a batch out of order says so.
    const d = target();
    const [, , skipped] = applyAll(d, [begin(), batch(0, [p0]), batch(2, [p2, p3])]);
    expect(skipped?.error).toMatch(/chunk 2 is out of order \(expected 1\)/u);
    expect(d.fsm.stagedRestore()).toBeNull();
  });

  it('refuses the whole entry for a bad part in the middle, deterministically, and drops the staging', () => {
    const parts = sourceParts();
    const bad = new Uint8Array([0xc1]); // not msgpack
    const commands = [
      begin(),
      batch(0, parts.slice(0, 2)),
      batch(2, [parts[2] as Uint8Array, bad, parts[3] as Uint8Array]),
      ...batches(parts.slice(3), 2).map((c) => (c.type === 'restore-batch' ? { ...c, seq: c.seq + 3 } : c)),
      commit(parts),
    ];
    const runs = [target(), target()].map((d) => {
      const results = applyAll(d, commands.slice(0, 3));
      // Part 2 went into the staging before the bad one: the refusal drops that too.
      expect(d.fsm.stagedRestore()).toBeNull();
      expect(d.fsm.stagedBytes).toBe(0);
      results.push(...applyAll(d, commands.slice(3)));
      expect(text(d.fsm.getKey('old')?.value)).toBe('kept');
      expect(d.fsm.list('a/')).toEqual([]);
      return results;
    });
    const [first, second] = runs;
    expect(first?.slice(0, 2).every((r) => r.ok)).toBe(true);
    expect(first?.[2]?.ok).toBe(false);
    expect(first?.[2]?.error).toMatch(/^restore r1: /u);
    expect(first?.slice(3).every((r) => !r.ok)).toBe(true);
    expect(second).toEqual(first);
    // The same replayed on another FSM from the entries: the same state, byte for byte.
    const first0 = target();
    applyAll(first0, commands);
    const replay = target();
    applyAll(replay, commands);
    expect(Buffer.from(replay.fsm.snapshot()).equals(Buffer.from(first0.fsm.snapshot()))).toBe(true);
  });

  it('refuses a batch that takes the staged rows past groupStateBytesMax mid-entry', () => {
    const parts = sourceParts();
    const three = parts.slice(0, 3);
    // Room for the header and the first chunk, not for the second.
    const bound = (parts[0]?.byteLength ?? 0) + (parts[1]?.byteLength ?? 0) + 1024;
    expect(Buffer.concat(three).byteLength).toBeGreaterThan(bound);
    const d = new FsmDriver({ groupStateBytesMax: bound });
    const results = applyAll(d, [begin(), batch(0, three), commit(parts)]);
    expect(results[1]?.error).toMatch(/groupStateBytesMax/u);
    expect(results[2]?.error).toMatch(/not staged/u);
    expect(d.fsm.stagedBytes).toBe(0);
    expect(d.fsm.stagedRestore()).toBeNull();
  });

  it('still applies the single-part restore-chunk entries a WAL may hold, byte for byte as before, mixed with batches', () => {
    const parts = sourceParts();
    // Today's chunk shape on the wire, as the previous build wrote it.
    const old = packr.pack([commandVersion, 'restore-chunk', 'r1', 1, parts[1]]);
    expect(Buffer.from(encodeCommand(chunk(1, parts[1] as Uint8Array))).equals(old)).toBe(true);
    const decoded = decodeCommand(old);
    if (decoded.type !== 'restore-chunk') throw new Error(`a chunk, not ${decoded.type}`);
    expect([decoded.restoreId, decoded.seq]).toEqual(['r1', 1]);
    expect(Buffer.from(decoded.data).equals(parts[1] as Uint8Array)).toBe(true);
    const d = target();
    const results = applyAll(d, [
      begin(),
      chunk(0, parts[0] as Uint8Array),
      chunk(1, parts[1] as Uint8Array),
      batch(2, parts.slice(2, 4)),
      chunk(4, parts[4] as Uint8Array),
      batch(5, parts.slice(5)),
      commit(parts),
    ]);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(d.fsm.list('a/')).toHaveLength(12);
    expect(d.fsm.getKey('lock')?.session).toBe('s1');
  });
});

describe('restore-batch bounds', () => {
  const restoreId = 'x'.repeat(restoreIdBytesMax);

  it('round-trips exactly, into plain Uint8Arrays that do not share the entry buffer', () => {
    const command = batch(3, [new Uint8Array([1, 2]), new Uint8Array([3])], restoreId);
    const data = encodeCommand(command);
    const decoded = decodeCommand(data);
    expect(decoded).toEqual(command);
    if (decoded.type !== 'restore-batch') throw new Error('a batch');
    expect(decoded.parts[0]?.constructor).toBe(Uint8Array);
    data.fill(0);
    expect(decoded.parts).toEqual([new Uint8Array([1, 2]), new Uint8Array([3])]);
  });

  it('a batch at every bound at once still fits one Raft proposal', () => {
    expect(restoreBatchBytesMax).toBeGreaterThanOrEqual(restoreChunkBytesMax);
    const parts = Array.from({ length: restoreBatchPartsMax }, (_, i) =>
      new Uint8Array(Math.floor(restoreBatchBytesMax / restoreBatchPartsMax)).fill(i),
    );
    // The largest part, alone, makes a batch too.
    for (const full of [parts, [new Uint8Array(restoreChunkBytesMax)]]) {
      // A restoreId of multi-byte characters: the framing allows 3 bytes each.
      const data = encodeCommand(
        batch(Number.MAX_SAFE_INTEGER - 100, full, '\u20ac'.repeat(restoreIdBytesMax)),
      );
      expect(data.byteLength).toBeLessThanOrEqual(raftLimits.proposalBytesMax);
    }
  });

  it('asserts at encode and decode on no part, too many, a part or a total too large', () => {
    const tooLarge: Record<string, Uint8Array[]> = {
      'no part': [],
      'too many parts': Array.from({ length: restoreBatchPartsMax + 1 }, () => new Uint8Array(1)),
      'a part over restoreChunkBytesMax': [new Uint8Array(restoreChunkBytesMax + 1)],
      'parts over restoreBatchBytesMax': [
        new Uint8Array(restoreChunkBytesMax),
        new Uint8Array(restoreBatchBytesMax - restoreChunkBytesMax + 1),
      ],
    };
    for (const [name, parts] of Object.entries(tooLarge)) {
      expect(() => encodeCommand(batch(0, parts)), name).toThrow(RaftInvariantError);
      const wire = packr.pack([commandVersion, 'restore-batch', 'r1', 0, parts]);
      expect(() => decodeCommand(wire), name).toThrow(RaftInvariantError);
    }
    for (const wire of [
      [commandVersion, 'restore-batch', 'r1', 0, 'not parts'],
      [commandVersion, 'restore-batch', 'r1', -1, [new Uint8Array(1)]],
      [commandVersion, 'restore-batch', 'r1', 0, ['not bytes']],
      [commandVersion, 'restore-batch', 'r1', 0],
    ]) {
      expect(() => decodeCommand(packr.pack(wire)), JSON.stringify(wire)).toThrow(RaftInvariantError);
    }
  });
});
