import { sessionResultsMax } from '@conclave/protocol';
import { RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { commandVersion, decodeCommand, encodeCommand } from '../commands.js';
import { bytes, FsmDriver, reservedRows } from '../testing/driver.js';
import { everyKind, nextFences, reservedRowProblems, rowsNaming } from '../testing/primitives.js';
import { commandProblem } from './engine.js';
import { primitiveRowKey, resultsRowKey } from './rows.js';

describe('exactly once', () => {
  it('the same (session, seq) applied twice returns the first result and changes the state once', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    const first = d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 1 });
    const retry = d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 1 });
    expect(retry).toEqual({ ...first, index: first.index + 1 });
    expect(retry.result).toEqual({ value: 1, version: first.index });
    expect(d.read('counter', 'C', 'get').value).toEqual({ value: 1, version: first.index });
    // The next seq applies; calls without a seq always apply.
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 2 }).result).toMatchObject({
      value: 2,
    });
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1' }).result).toMatchObject({ value: 3 });
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1' }).result).toMatchObject({ value: 4 });
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: 4 });
  });

  it('seqs are per session: another session’s seq 1 applies', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 1 });
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's2', seq: 1 }).result).toMatchObject({
      value: 2,
    });
  });

  it('a refusal is remembered too: the retry is refused alike even when the call would now succeed', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.prim('counter', 'C', 'set', { value: 1 });
    const refused = d.prim('counter', 'C', 'set', { value: 5, ifVersion: 3 }, { session: 's1', seq: 1 });
    expect(refused.error?.code).toBe('VERSION_MISMATCH');
    expect(d.prim('counter', 'C', 'increment').index).toBe(4);
    const retry = d.prim('counter', 'C', 'set', { value: 5, ifVersion: 4 }, { session: 's1', seq: 1 });
    expect(retry).toEqual({ ...refused, index: retry.index });
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: 2 });
  });

  it('a retried write that returned bytes returns the same bytes, as plain Uint8Array', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.prim('value', 'V', 'set', { value: bytes('old') });
    const first = d.prim('value', 'V', 'set', { value: bytes('new') }, { session: 's1', seq: 1 });
    const retry = d.prim('value', 'V', 'set', { value: bytes('newer') }, { session: 's1', seq: 1 });
    expect(retry.result).toEqual(first.result);
    const previous = (retry.result as { previous: { value: Uint8Array } }).previous.value;
    expect(previous.constructor).toBe(Uint8Array);
    expect(JSON.stringify(retry.result)).toBe(JSON.stringify(first.result));
    expect(d.read('value', 'V', 'get').value).toMatchObject({ value: bytes('new') });
  });

  it(`remembers the last ${sessionResultsMax} results: an older seq is REQUEST_EXPIRED and does not apply`, () => {
    const d = new FsmDriver();
    d.createSession('s1');
    for (let seq = 1; seq <= sessionResultsMax + 1; seq++) {
      d.prim('counter', 'C', 'increment', {}, { session: 's1', seq });
    }
    const count = sessionResultsMax + 1;
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: count });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 1 })).toMatchObject({
      result: null,
      error: { code: 'REQUEST_EXPIRED' },
    });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    // The oldest still remembered is answered, not applied.
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 2 }).result).toMatchObject({
      value: 2,
    });
    expect(d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: count }).result).toMatchObject({
      value: count,
    });
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: count });
    // One results row per session, holding at most sessionResultsMax results.
    expect(reservedRows(d.fsm).map((row) => row.key)).toEqual([
      resultsRowKey('s1'),
      primitiveRowKey({ kind: 'counter', name: 'C' }),
    ]);
  });

  it('a call with a session the group does not know is SESSION_EXPIRED and changes nothing', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.prim('counter', 'C', 'increment', {}, { session: 's1', seq: 1 });
    d.destroySession('s1');
    const kvIndex = d.fsm.kvIndex();
    for (const session of ['s1', 'never']) {
      for (const seq of [1, 2, null]) {
        expect(d.prim('counter', 'C', 'increment', {}, { session, seq })).toMatchObject({
          result: null,
          error: { code: 'SESSION_EXPIRED', message: expect.stringContaining(session) },
        });
      }
    }
    expect(d.prim('lock', 'L', 'acquire', {}, { session: 'never' }).error?.code).toBe('SESSION_EXPIRED');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: 1 });
  });

  it('a gather write (clear) applies once too', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.prim('set', 'T', 'add', { key: 'a' });
    expect(d.prim('set', 'T', 'clear', {}, { session: 's1', seq: 1 }).result).toEqual({ removed: 1 });
    d.prim('set', 'T', 'add', { key: 'b' });
    expect(d.prim('set', 'T', 'clear', {}, { session: 's1', seq: 1 }).result).toEqual({ removed: 1 });
    expect(d.read('set', 'T', 'size').value).toEqual({ size: 1 });
  });
});

describe('session holds', () => {
  it('each session a primitive’s state names has one hold row, kept in step with the state', () => {
    const d = everyKind();
    expect(reservedRowProblems(d.fsm)).toEqual([]);
  });

  it('destroying a session releases what it held and deletes its hold and results rows: no reserved row names it', () => {
    const d = everyKind();
    expect(rowsNaming(d.fsm, 's1').length).toBeGreaterThan(5);
    expect(d.fsm.getKey(resultsRowKey('s1'))).not.toBeNull();
    // s1 holds lock L and leads election E: one entry hands over both, each at its own fence.
    const handed = nextFences(d, 2);
    const result = d.destroySession('s1');
    // Only the user's key is reported released: the primitives' rows are not keys of theirs.
    expect(result.released).toEqual([{ key: 'user/locked', lockDelayMs: 15_000 }]);
    expect(rowsNaming(d.fsm, 's1')).toEqual([]);
    expect(reservedRowProblems(d.fsm)).toEqual([]);
    const { fence } = d.read('lock', 'L', 'holder').value as { fence: number };
    const { term } = d.read('election', 'E', 'term').value as { term: number };
    expect([fence, term].sort((a, b) => a - b)).toEqual(handed);
    expect(d.read('lock', 'L', 'holder').value).toEqual({ session: 's2', fence, waiters: ['s3'] });
    expect(d.read('election', 'E', 'term').value).toEqual({ term, leader: 'b', candidates: ['b', 'c'] });
    expect(d.read('semaphore', 'S', 'availablePermits', { session: 's3' }).value).toMatchObject({
      held: 1,
      available: 0,
      waiters: 0,
    });
    // A behavior-delete session: its user keys go; its primitive state goes as its kinds say.
    d.destroySession('s3');
    expect(rowsNaming(d.fsm, 's3')).toEqual([]);
    expect(d.read('map', 'M', 'get', { key: 'k2' }).value).toBeNull();
    expect(d.read('lock', 'L2', 'holder').value).toEqual({ session: null, fence: null, waiters: [] });
    d.destroySession('s2');
    expect(reservedRows(d.fsm).filter((row) => row.session !== null)).toEqual([]);
    expect(reservedRowProblems(d.fsm)).toEqual([]);
    // Durable state stays.
    expect(d.read('counter', 'C', 'get').value).toMatchObject({ value: 5 });
    expect(d.read('map', 'M', 'get', { key: 'k1' }).value).toMatchObject({ value: bytes('v1') });
    expect(d.read('set', 'T', 'contains', { key: 'x' }).value).toMatchObject({ contains: true });
    expect(d.read('set', 'T', 'contains', { key: 'y' }).value).toMatchObject({ contains: false });
  });
});

describe('commandProblem', () => {
  const base = { kind: 'counter', name: 'C', op: 'increment', args: {}, session: null } as const;

  it('accepts a well-formed command and names what is wrong with any other', () => {
    expect(commandProblem(base)).toBeNull();
    expect(commandProblem({ ...base, kind: 'queue' as never })).toMatch(/no primitive kind "queue"/);
    expect(commandProblem({ ...base, op: 'explode' })).toMatch(/counter has no operation "explode"/);
    expect(commandProblem({ ...base, args: { delta: 1.5 } })).toMatch(/args.delta must be an integer/);
    expect(commandProblem({ ...base, args: { step: 1 } })).toMatch(/args.step is not an argument/);
    expect(commandProblem({ ...base, args: [] as never })).toBe('args must be an object');
    expect(commandProblem({ ...base, kind: 'map', op: 'put', args: { value: bytes('v') } })).toMatch(
      /args.key is required/,
    );
    expect(
      commandProblem({ ...base, kind: 'map', op: 'put', args: { key: 'a\u0000b', value: bytes('v') } }),
    ).toMatch(/control character/);
    expect(commandProblem({ ...base, kind: 'map', op: 'clear' })).toBeNull();
  });

  it('a malformed command is never proposed: encodeCommand asserts', () => {
    expect(() =>
      encodeCommand({ type: 'prim', ...base, op: 'increment', args: { delta: 'one' }, seq: null }),
    ).toThrow(RaftInvariantError);
  });
});

describe('prim commands in Raft entries', () => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const write = {
    type: 'prim',
    kind: 'map',
    name: 'M',
    op: 'put',
    args: { key: 'k', value: bytes('v'), ifVersion: 0, ephemeral: true },
    session: 's1',
    seq: 7,
  } as const;

  it('round-trip through encodeCommand and decodeCommand, bytes copied out of the entry', () => {
    const data = encodeCommand(write);
    const decoded = decodeCommand(data);
    expect(decoded).toEqual(write);
    const value = (decoded as typeof write).args.value;
    expect(value.buffer).not.toBe(data.buffer);
    expect(
      decodeCommand(
        encodeCommand({ ...write, session: null, seq: null, args: { key: 'k', value: bytes('') } }),
      ),
    ).toMatchObject({ session: null, seq: null });
  });

  it('a read is never proposed: encoding one asserts, and so does decoding one', () => {
    const reads = [
      { kind: 'counter', name: 'C', op: 'get', args: {} },
      { kind: 'lock', name: 'L', op: 'holder', args: {} },
      { kind: 'map', name: 'M', op: 'size', args: {} },
      { kind: 'set', name: 'T', op: 'elements', args: { limit: 5 } },
    ] as const;
    for (const read of reads) {
      expect(() => encodeCommand({ type: 'prim', ...read, session: null, seq: null })).toThrow(
        RaftInvariantError,
      );
      const wire = packr.pack([commandVersion, 'prim', read.kind, read.name, read.op, read.args, null, null]);
      expect(() => decodeCommand(wire)).toThrow(RaftInvariantError);
    }
  });

  it('a seq comes with a session and is >= 1: anything else asserts at encoding and decoding', () => {
    for (const [session, seq] of [
      [null, 1],
      ['s1', 0],
      ['s1', -3],
    ] as const) {
      expect(() => encodeCommand({ ...write, session, seq })).toThrow(RaftInvariantError);
      const wire = packr.pack([commandVersion, 'prim', 'counter', 'C', 'increment', {}, session, seq]);
      expect(() => decodeCommand(wire)).toThrow(RaftInvariantError);
    }
  });
});
