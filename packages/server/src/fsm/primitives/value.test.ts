import { describe, expect, it } from 'vitest';
import { bytes, FsmDriver, reservedRows } from '../testing/driver.js';
import { commandProblem } from './engine.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

const row = primitiveRowKey({ kind: 'value', name: 'v' });

describe('value', () => {
  it('reads null at version 0 before its first write', () => {
    const d = new FsmDriver();
    expect(d.read('value', 'v', 'get').value).toEqual({ value: null, version: 0 });
  });

  it('set stores the bytes at the Raft index and reports what it replaced', () => {
    const d = new FsmDriver();
    const first = d.prim('value', 'v', 'set', { value: bytes('one') });
    expect(first).toMatchObject({ result: { version: first.index, previous: null }, error: null });
    const second = d.prim('value', 'v', 'set', { value: bytes('two') });
    expect(second.result).toEqual({
      version: second.index,
      previous: { value: bytes('one'), version: first.index },
    });
    expect(d.read('value', 'v', 'get').value).toEqual({ value: bytes('two'), version: second.index });
  });

  it('compareAndSet writes only at ifVersion; a mismatch is VERSION_MISMATCH and changes nothing', () => {
    const d = new FsmDriver();
    // ifVersion 0: only while absent.
    const created = d.prim('value', 'v', 'compareAndSet', { value: bytes('a'), ifVersion: 0 });
    expect(created.error).toBeNull();
    const kvIndex = d.fsm.kvIndex();
    for (const ifVersion of [0, created.index - 1, created.index + 1]) {
      const refused = d.prim('value', 'v', 'compareAndSet', { value: bytes('b'), ifVersion });
      expect(refused).toMatchObject({
        result: null,
        error: { code: 'VERSION_MISMATCH', message: expect.stringContaining(`version ${created.index}`) },
      });
    }
    const setRefused = d.prim('value', 'v', 'set', { value: bytes('b'), ifVersion: created.index + 5 });
    expect(setRefused.error?.code).toBe('VERSION_MISMATCH');
    expect(d.read('value', 'v', 'get').value).toEqual({ value: bytes('a'), version: created.index });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    const swapped = d.prim('value', 'v', 'compareAndSet', { value: bytes('b'), ifVersion: created.index });
    expect(swapped.result).toEqual({
      version: swapped.index,
      previous: { value: bytes('a'), version: created.index },
    });
  });

  it('delete keeps the row, so the version only grows: a later ifVersion 0 fails', () => {
    const d = new FsmDriver();
    const set = d.prim('value', 'v', 'set', { value: bytes('x') });
    const deleted = d.prim('value', 'v', 'delete');
    expect(deleted.result).toEqual({
      version: deleted.index,
      previous: { value: bytes('x'), version: set.index },
    });
    expect(d.read('value', 'v', 'get').value).toEqual({ value: null, version: deleted.index });
    expect(d.fsm.getKey(row)?.modifyIndex).toBe(deleted.index);
    // Deleting nothing writes nothing.
    const again = d.prim('value', 'v', 'delete');
    expect(again.result).toEqual({ version: deleted.index, previous: null });
    expect(d.fsm.getKey(row)?.modifyIndex).toBe(deleted.index);
    expect(d.prim('value', 'v', 'compareAndSet', { value: bytes('y'), ifVersion: 0 }).error?.code).toBe(
      'VERSION_MISMATCH',
    );
    const recreated = d.prim('value', 'v', 'compareAndSet', { value: bytes('y'), ifVersion: deleted.index });
    expect(recreated.result).toEqual({ version: recreated.index, previous: null });
    expect(recreated.index).toBeGreaterThan(deleted.index);
    // delete with ifVersion: only at that version.
    expect(d.prim('value', 'v', 'delete', { ifVersion: deleted.index }).error?.code).toBe('VERSION_MISMATCH');
    expect(d.prim('value', 'v', 'delete', { ifVersion: recreated.index }).error).toBeNull();
  });

  it('an ephemeral value is deleted (version growing) when its session is destroyed', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    const set = d.prim('value', 'v', 'set', { value: bytes('mine'), ephemeral: true }, { session: 's1' });
    expect(d.fsm.getKey(holdRowKey({ session: 's1', rowKey: row }))?.session).toBe('s1');
    d.destroySession('s1');
    const destroyed = d.next - 1;
    expect(d.read('value', 'v', 'get').value).toEqual({ value: null, version: destroyed });
    expect(destroyed).toBeGreaterThan(set.index);
    expect(reservedRows(d.fsm).map((e) => e.key)).toEqual([row]);
  });

  it('a value rewritten without ephemeral is no longer bound to the session', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.prim('value', 'v', 'set', { value: bytes('s1'), ephemeral: true }, { session: 's1' });
    const kept = d.prim('value', 'v', 'set', { value: bytes('kept') }, { session: 's1' });
    expect(d.fsm.getKey(holdRowKey({ session: 's1', rowKey: row }))).toBeNull();
    d.destroySession('s1');
    expect(d.read('value', 'v', 'get').value).toEqual({ value: bytes('kept'), version: kept.index });
    // Bound to another session, it goes with that one and not with the first.
    d.prim('value', 'v', 'set', { value: bytes('s2'), ephemeral: true }, { session: 's2' });
    d.createSession('s3');
    d.destroySession('s3');
    expect(d.read('value', 'v', 'get').value).toMatchObject({ value: bytes('s2') });
    d.destroySession('s2');
    expect(d.read('value', 'v', 'get').value).toMatchObject({ value: null });
  });

  it('an ephemeral value needs a session (commandProblem)', () => {
    const command = {
      kind: 'value',
      name: 'v',
      op: 'set',
      args: { value: bytes('x'), ephemeral: true },
    } as const;
    expect(commandProblem({ ...command, session: null })).toMatch(/needs a session/);
    expect(commandProblem({ ...command, session: 's1' })).toBeNull();
    expect(commandProblem({ ...command, args: { value: bytes('x') }, session: null })).toBeNull();
  });
});
