import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConclaveFsm } from './fsm.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  snapshotCopySliceBytes,
  snapshotPartBytesMax,
} from './snapshot-codec.js';
import { snapshotChunkBytesTarget, snapshotChunkRows, snapshotRowBytesMax } from './snapshot-limits.js';
import {
  type PartsSummary,
  SnapshotPartError,
  SnapshotPartsReader,
  snapshotReferencedSessionsMax,
} from './snapshot-parts.js';
import { bytes, FsmDriver } from './testing/driver.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

function drain(fsm: ConclaveFsm): Uint8Array[] {
  const parts: Uint8Array[] = [];
  const reader = fsm.openSnapshotParts();
  for (let part = reader.next(); part !== null; part = reader.next()) parts.push(part);
  return parts;
}

function read(parts: readonly Uint8Array[], keepRows = true): PartsSummary {
  const reader = new SnapshotPartsReader({ keepRows });
  for (const part of parts) reader.push(part);
  return reader.finish();
}

/** A small group: keys, a lock held by a session, autopilot settings. */
function small(): FsmDriver {
  const d = new FsmDriver();
  d.createSession('s1', { node: 'n1' });
  for (let i = 0; i < 20; i++) d.set(`k/${i}`, `v${i}`);
  d.kv({ verb: 'lock', key: 'lock', session: 's1' });
  return d;
}

const header = (keys: number, sessions: number) => packr.pack([4, 9, 9, 9, keys, sessions, null, null]);
const kvRow = (key: string, session: string | null = null) => [key, new Uint8Array([1]), 0, 1, 1, 0, session];
const sessionRow = (id: string) => [id, '', 'n', 0, 'release', 0, 1, 1];

describe('snapshot parts', () => {
  it('concatenate to exactly the FSM snapshot without its restore in progress', () => {
    const d = small();
    expect(Buffer.concat(drain(d.fsm)).equals(Buffer.from(d.fsm.snapshot()))).toBe(true);
    // With a restore staged, the parts leave it out and the Raft snapshot keeps it.
    d.apply({ type: 'restore-begin', restoreId: 'r' });
    d.apply({
      type: 'restore-chunk',
      restoreId: 'r',
      seq: 0,
      data: drain(small().fsm)[0] ?? new Uint8Array(),
    });
    const raft = decodeSnapshot(d.fsm.snapshot());
    expect(raft.restoreStaging?.restoreId).toBe('r');
    const parts = drain(d.fsm);
    expect(Buffer.concat(parts).equals(Buffer.from(encodeSnapshot({ ...raft, restoreStaging: null })))).toBe(
      true,
    );
    const restored = new ConclaveFsm();
    restored.restore(Buffer.concat(parts));
    expect(restored.list('')).toEqual(d.fsm.list(''));
    const summary = read(parts);
    expect(summary.kvs).toEqual(d.fsm.list(''));
    expect(summary.sessions).toEqual(d.fsm.listSessions({ node: null }));
    expect(summary.appliedIndex).toBe(d.fsm.appliedIndex());
  });

  it('are taken at the call: later writes are not in them', () => {
    const d = small();
    const parts = d.fsm.openSnapshotParts();
    const at = d.fsm.appliedIndex();
    d.set('k/late', 'x');
    const taken: Uint8Array[] = [];
    for (let part = parts.next(); part !== null; part = parts.next()) taken.push(part);
    expect(parts.appliedIndex).toBe(at);
    expect(parts.keys).toBe(21);
    expect(read(taken).kvs.map((e) => e.key)).not.toContain('k/late');
  });

  it('stay within snapshotPartBytesMax with 512 KiB values, and close at snapshotChunkBytesTarget', () => {
    const d = new FsmDriver();
    const big = new Uint8Array(512 * 1024).fill(7);
    for (let i = 0; i < 12; i++) d.kv({ verb: 'set', key: `big/${i}`.padEnd(2048, 'x'), value: big });
    for (let i = 0; i < snapshotChunkRows + 10; i++) d.set(`small/${i}`, 'v');
    const parts = drain(d.fsm);
    for (const part of parts) expect(part.byteLength).toBeLessThanOrEqual(snapshotPartBytesMax);
    const rowsPerPart = parts.slice(1).map((part) => (packr.unpack(part) as unknown[]).length);
    // A 256 KiB target closes a chunk at its first big row: one big row per part. Rows by
    // count alone would have put all 12 (6 MiB) in one.
    expect(rowsPerPart.slice(0, 12)).toEqual(new Array(12).fill(1));
    expect(rowsPerPart.length).toBeGreaterThan(13);
    for (const part of parts.slice(13)) expect(part.byteLength).toBeLessThanOrEqual(snapshotChunkBytesTarget);
    expect(Math.max(...rowsPerPart)).toBeLessThanOrEqual(snapshotChunkRows);
    expect(read(parts, false).keys).toBe(12 + snapshotChunkRows + 10);
  });
});

describe('a Raft snapshot encoded in steps', () => {
  it('copies its parts into one buffer a slice per step, never the whole at once, to the same bytes', () => {
    const d = new FsmDriver();
    const value = new Uint8Array(64 * 1024).fill(3);
    for (let i = 0; i < 80; i++) d.kv({ verb: 'set', key: `k/${i}`, value });
    const parts = drain(d.fsm);
    const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
    const steps = d.fsm.snapshotSteps();
    let yields = 0;
    let step = steps.next();
    for (; step.done !== true; step = steps.next()) yields++;
    expect(Buffer.compare(Buffer.from(step.value), Buffer.concat(parts))).toBe(0);
    // One yield per part while encoding, then at least one per snapshotCopySliceBytes copied.
    expect(yields).toBeGreaterThanOrEqual(parts.length + Math.floor(total / snapshotCopySliceBytes));
  });
});

describe('SnapshotPartsReader', () => {
  it('with keepRows false holds no rows, yet returns each part’s rows and checks the whole', () => {
    const d = small();
    const reader = new SnapshotPartsReader({ keepRows: false });
    const streamed = drain(d.fsm).flatMap((part) => reader.push(part).kvs);
    expect(streamed).toEqual(d.fsm.list(''));
    expect(reader.progress()?.kvs).toEqual([]);
    expect(reader.progress()?.sessions).toEqual([]);
    const summary = reader.finish();
    expect(summary.kvs).toEqual([]);
    expect(summary.sessions).toEqual([]);
    expect([summary.keys, summary.sessionCount]).toEqual([21, 1]);
  });

  it('accepts version 2 and 3 headers without staging', () => {
    expect(read([packr.pack([2, 1, 1, 0, 1, 0]), packr.pack([kvRow('a')])]).kvs).toHaveLength(1);
    expect(read([packr.pack([3, 1, 1, 0, 0, 0, null, null])]).keys).toBe(0);
  });

  const refusals: [string, Uint8Array[], RegExp][] = [
    ['no header', [], /no header/u],
    ['not msgpack (a value cut short)', [new Uint8Array([0x92, 0x01])], /not valid msgpack/u],
    ['an empty part', [new Uint8Array()], /not valid msgpack/u],
    ['two values in one part', [Buffer.concat([header(0, 0), header(0, 0)])], /2 values/u],
    ['an unknown version', [packr.pack([5, 1, 1, 0, 0, 0, null, null])], /unknown snapshot version 5/u],
    ['a row chunk first', [packr.pack([kvRow('a')])], /unknown snapshot version/u],
    ['a restore in progress', [packr.pack([4, 1, 1, 0, 0, 0, null, ['r', 1]])], /restore in progress/u],
    ['a bad count', [packr.pack([4, 1, 1, 0, -1, 0, null, null])], /key count/u],
    ['a bad autopilot', [packr.pack([4, 1, 1, 0, 0, 0, [[true], 1, 1], null])], /autopilot/u],
    ['a bad kv row', [header(1, 0), packr.pack([['a', 'text', 0, 1, 1, 0, null]])], /not bytes/u],
    ['a bad session row', [header(0, 1), packr.pack([['s', '', 'n', 0, 'keep', 0, 1, 1]])], /behavior/u],
    ['an empty chunk', [header(1, 0), packr.pack([])], /non-empty array/u],
    ['more keys than the header', [header(1, 0), packr.pack([kvRow('a'), kvRow('b')])], /more than/u],
    [
      'a part after the last row',
      [header(1, 0), packr.pack([kvRow('a')]), packr.pack([kvRow('b')])],
      /after the last/u,
    ],
    ['keys out of order', [header(2, 0), packr.pack([kvRow('b'), kvRow('a')])], /not after/u],
    ['a repeated key', [header(2, 0), packr.pack([kvRow('a')]), packr.pack([kvRow('a')])], /not after/u],
    [
      'kvs and sessions mixed',
      [header(1, 1), packr.pack([kvRow('a'), sessionRow('s')])],
      /more than|fields/u,
    ],
    ['rows missing', [header(2, 0), packr.pack([kvRow('a')])], /1 of 2 keys/u],
    [
      'a key held by a missing session',
      [header(1, 1), packr.pack([kvRow('a', 'ghost')]), packr.pack([sessionRow('s')])],
      /ghost/u,
    ],
    ['a part over snapshotPartBytesMax', [header(0, 0), new Uint8Array(snapshotPartBytesMax + 1)], /over/u],
    [
      // Within a part's bound alone, yet re-encoded after a near-full chunk it would not be.
      'a row over snapshotRowBytesMax',
      [header(1, 0), packr.pack([['big', new Uint8Array(snapshotRowBytesMax), 0, 1, 1, 0, null]])],
      /larger than a row may be/u,
    ],
  ];
  for (const [what, parts, message] of refusals) {
    it(`refuses ${what} with SnapshotPartError`, () => {
      let error: unknown = null;
      try {
        read(parts);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(SnapshotPartError);
      expect((error as Error).message).toMatch(message);
    });
  }

  it(`refuses kv rows referencing over snapshotReferencedSessionsMax sessions`, () => {
    const keys = snapshotReferencedSessionsMax + 1;
    const reader = new SnapshotPartsReader({ keepRows: false });
    reader.push(header(keys, 0));
    const rowsPerPart = 4096;
    const push = () => {
      for (let at = 0; at < keys; at += rowsPerPart) {
        const rows = [];
        for (let i = at; i < Math.min(at + rowsPerPart, keys); i++) {
          const name = String(i).padStart(8, '0');
          rows.push(kvRow(`k${name}`, `s${name}`));
        }
        reader.push(packr.pack(rows));
      }
    };
    expect(push).toThrow(/over 65536 sessions/u);
  });
});

describe('byte values survive the part', () => {
  it('a row’s value is its own copy, not a view of the part', () => {
    const part = packr.pack([kvRow('a')]);
    const reader = new SnapshotPartsReader({ keepRows: true });
    reader.push(header(1, 0));
    const [row] = reader.push(part).kvs;
    part.fill(0);
    expect(row?.value).toEqual(bytes('\u0001'));
  });
});
