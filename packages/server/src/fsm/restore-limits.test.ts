import { createHash } from 'node:crypto';
import { type Entry, EntryType, RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { commandVersion, decodeCommand, encodeCommand, type FsmCommand, type FsmResult } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { PartsDigest } from './parts-digest.js';
import { restoreGroupBytesMax } from './restore-wire.js';
import { groupStateBytesMaxDefault } from './snapshot-limits.js';
import { FsmDriver, text } from './testing/driver.js';

/** A group's state as user snapshot parts: `keys` keys of 10 KiB values, then `sessions` sessions. */
function sourceParts(options: { keys: number; sessions?: number }): Uint8Array[] {
  const d = new FsmDriver();
  for (let i = 0; i < (options.sessions ?? 0); i++) d.createSession(`s${i}`);
  for (let i = 0; i < options.keys; i++) d.set(`a/${i}`, 'v'.repeat(10 * 1024));
  const parts: Uint8Array[] = [];
  const reader = d.fsm.openSnapshotParts();
  for (let part = reader.next(); part !== null; part = reader.next()) parts.push(part);
  return parts;
}

function steps(parts: readonly Uint8Array[], restoreId = 'r1'): FsmCommand[] {
  return [
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
}

function restoreResult(result: FsmResult): { ok: boolean; error: string | null } {
  if (result.type !== 'restore') throw new Error(`expected a restore result, got ${result.type}`);
  return result;
}

/** A group holding one key, bounded at 64 KiB of state: an archive of 10 keys of 10 KiB is over. */
const limits = { groupStateBytesMax: 64 * 1024 };

describe('a restore within the group state bound', () => {
  it('is one limit: restoreGroupBytesMax is the default groupStateBytesMax', () => {
    expect(restoreGroupBytesMax).toBe(groupStateBytesMaxDefault);
  });

  it('refuses the chunk that takes the staged rows past groupStateBytesMax, and drops the staging', () => {
    const d = new FsmDriver(limits);
    d.set('old', 'kept');
    const commands = steps(sourceParts({ keys: 10 }));
    const results = commands.map((command) => restoreResult(d.apply(command)));
    const refused = results.findIndex((r) => !r.ok);
    expect(refused).toBeGreaterThan(0);
    expect(results[refused]?.error).toMatch(/groupStateBytesMax/u);
    // The staging is gone: the commit finds nothing staged, and nothing changed.
    expect(results.at(-1)?.error).toMatch(/not staged/u);
    expect(d.fsm.stagedBytes).toBe(0);
    expect(text(d.fsm.getKey('old')?.value)).toBe('kept');
    expect(d.fsm.list('a/')).toEqual([]);
  });

  it('counts staged rows, carries the count through a Raft snapshot, and sets stateBytes at the commit', () => {
    const parts = sourceParts({ keys: 4 });
    const commands = steps(parts);
    const d = new FsmDriver(limits);
    for (const command of commands.slice(0, -1)) expect(restoreResult(d.apply(command)).ok).toBe(true);
    const staged = d.fsm.stagedBytes;
    expect(staged).toBeGreaterThan(4 * 10 * 1024);
    expect(d.fsm.stagedRestore()).toEqual({ restoreId: 'r1', parts: parts.length, rowBytes: staged });
    const follower = new ConclaveFsm(limits);
    follower.restore(d.fsm.snapshot());
    expect(follower.stagedBytes).toBe(staged);
    expect(restoreResult(d.apply(commands.at(-1) as FsmCommand)).ok).toBe(true);
    expect(d.fsm.stateBytes).toBe(staged);
    expect(d.fsm.stagedBytes).toBe(0);
    expect(d.fsm.stagedRestore()).toBeNull();
  });

  it('refuses a commit whose staged rows pass the bound (a staging loaded from a larger bound)', () => {
    const commands = steps(sourceParts({ keys: 10 }));
    const wide = new FsmDriver();
    for (const command of commands.slice(0, -1)) expect(restoreResult(wide.apply(command)).ok).toBe(true);
    const narrow = new FsmDriver(limits);
    narrow.fsm.restore(wide.fsm.snapshot());
    narrow.skip(wide.next - narrow.next);
    const result = restoreResult(narrow.apply(commands.at(-1) as FsmCommand));
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/pass the group's state bound/u);
    expect(narrow.fsm.list('')).toEqual([]);
    expect(narrow.fsm.stagedBytes).toBe(0);
  });

  it('refuses a commit bringing more sessions than sessionsMax', () => {
    const d = new FsmDriver({ sessionsMax: 2 });
    const results = steps(sourceParts({ keys: 1, sessions: 3 })).map((c) => restoreResult(d.apply(c)));
    expect(results.at(-1)?.ok).toBe(false);
    expect(results.at(-1)?.error).toMatch(/3 sessions, over the group's 2/u);
    expect(d.fsm.sessionCount()).toBe(0);
  });
});

describe("the previous release's restore entries, still in a WAL", () => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const sha = createHash('sha256').update('old').digest('hex');
  const legacyBegin = packr.pack([commandVersion, 'restore-begin', 'old', 1234, sha]);
  const legacyChunk = packr.pack([commandVersion, 'restore-chunk', 'old', 0, new Uint8Array(1234)]);
  const legacyCommit = packr.pack([commandVersion, 'restore-commit', 'old']);

  it('decode as legacy steps, which are never proposed', () => {
    expect(decodeCommand(legacyBegin)).toEqual({ type: 'restore-legacy', restoreId: 'old', step: 'begin' });
    expect(decodeCommand(legacyCommit)).toEqual({ type: 'restore-legacy', restoreId: 'old', step: 'commit' });
    expect(() => encodeCommand({ type: 'restore-legacy', restoreId: 'old', step: 'begin' })).toThrow(
      RaftInvariantError,
    );
  });

  it('replay through the FSM without asserting: refused alike on every server, state unchanged', () => {
    const replay = () => {
      const d = new FsmDriver();
      d.set('kept', 'yes');
      // A restore of the new format was staged before: an old begin replaces it, as a begin did.
      const parts = sourceParts({ keys: 1 });
      const fresh = steps(parts, 'new');
      for (const command of fresh.slice(0, -1)) d.apply(command);
      const entries: Entry[] = [legacyBegin, legacyChunk, legacyCommit].map((data) => ({
        term: 1,
        index: d.next + [legacyBegin, legacyChunk, legacyCommit].indexOf(data),
        type: EntryType.Normal,
        data,
      }));
      const results = entries.map((entry) => restoreResult(d.fsm.apply(entry)));
      d.skip(entries.length);
      const commitNew = restoreResult(d.apply(fresh.at(-1) as FsmCommand));
      return { d, results, commitNew };
    };
    const first = replay();
    expect(first.results.map((r) => r.ok)).toEqual([false, false, false]);
    expect(first.results[0]?.error).toMatch(/previous release/u);
    expect(first.results[2]?.error).toMatch(/previous release/u);
    expect(first.commitNew.error).toMatch(/not staged/u);
    expect(text(first.d.fsm.getKey('kept')?.value)).toBe('yes');
    expect(first.d.fsm.list('a/')).toEqual([]);
    const second = replay();
    expect(second.results).toEqual(first.results);
    expect(Buffer.from(second.d.fsm.snapshot()).equals(Buffer.from(first.d.fsm.snapshot()))).toBe(true);
  });

  it('a commit naming more bytes than today’s bound (allowed before) decodes and is refused', () => {
    const commit = packr.pack([
      commandVersion,
      'restore-commit',
      'r1',
      1,
      restoreGroupBytesMax + 1,
      PartsDigest.hexOf([]),
    ]);
    const fsm = new ConclaveFsm();
    const result = restoreResult(fsm.apply({ term: 1, index: 1, type: EntryType.Normal, data: commit }));
    expect(result.ok).toBe(false);
  });
});
