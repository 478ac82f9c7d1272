import { createHash } from 'node:crypto';
import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { decodeCommand, encodeCommand, type FsmCommand, type FsmResult } from './commands.js';
import { restoreChunkBytesMax } from './restore-wire.js';
import { FsmDriver, text } from './testing/driver.js';

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A source group's state: keys, a lock held by a session; applied far past a fresh log. */
function sourceState(): Uint8Array {
  const d = new FsmDriver();
  d.skip(500);
  d.createSession('s1', { node: 'n1' });
  for (let i = 0; i < 40; i++) d.set(`a/${i}`, `v${i}`, i);
  d.kv({ verb: 'lock', key: 'lock', session: 's1' });
  return d.fsm.snapshot();
}

function restoreResult(result: FsmResult): { ok: boolean; error: string | null } {
  if (result.type !== 'restore') throw new Error(`expected a restore result, got ${result.type}`);
  return result;
}

function steps(data: Uint8Array, chunkBytes: number, restoreId = 'r1'): FsmCommand[] {
  const chunks: FsmCommand[] = [];
  for (let seq = 0; seq * chunkBytes < data.length; seq++) {
    const chunk = data.subarray(seq * chunkBytes, (seq + 1) * chunkBytes);
    chunks.push({ type: 'restore-chunk', restoreId, seq, data: chunk });
  }
  return [
    { type: 'restore-begin', restoreId, bytes: data.length, sha256: sha(data) },
    ...chunks,
    { type: 'restore-commit', restoreId },
  ];
}

describe('restore through Raft commands', () => {
  it('carries a restore in progress in the FSM snapshot, so a server that installs it mid-restore commits it too', () => {
    const data = sourceState();
    const commands = steps(data, 256);
    const half = Math.floor(commands.length / 2);
    const leader = new FsmDriver();
    for (const command of commands.slice(0, half)) expect(restoreResult(leader.apply(command)).ok).toBe(true);
    // A lagging follower installs the leader's snapshot taken between two chunks.
    const follower = new FsmDriver();
    follower.fsm.restore(leader.fsm.snapshot());
    follower.skip(leader.next - follower.next);
    for (const command of commands.slice(half)) {
      expect(restoreResult(leader.apply(command)).ok).toBe(true);
      expect(restoreResult(follower.apply(command)).ok).toBe(true);
    }
    expect(Buffer.from(follower.fsm.snapshot()).equals(Buffer.from(leader.fsm.snapshot()))).toBe(true);
    expect(follower.fsm.list('a/')).toHaveLength(40);
  });

  it('replaces every table at the commit, clamps future indexes to it, and wakes watchers', () => {
    const data = sourceState();
    const d = new FsmDriver();
    d.set('old', 'gone');
    let woken = 0;
    d.fsm.watch({ keys: ['unrelated'] }, () => woken++);
    const results = steps(data, 256).map((c) => restoreResult(d.apply(c)));
    expect(results.every((r) => r.ok)).toBe(true);
    const commitIndex = d.next - 1;
    expect(woken).toBe(1);
    expect(d.fsm.getKey('old')).toBeNull();
    expect(d.fsm.list('a/')).toHaveLength(40);
    expect(text(d.fsm.getKey('a/3')?.value)).toBe('v3');
    expect(d.fsm.getKey('lock')?.session).toBe('s1');
    expect(d.fsm.getSession('s1')?.node).toBe('n1');
    expect(d.fsm.kvIndex()).toBe(commitIndex);
    expect(d.fsm.appliedIndex()).toBe(commitIndex);
    // Indexes from the source's log (past 500) would be in this log's future.
    for (const e of d.fsm.list('')) expect(e.modifyIndex).toBeLessThanOrEqual(commitIndex);
    // Writes go on after it as usual.
    expect(d.set('after', 'x')).toBe(commitIndex + 1);
  });

  it('a chunk out of order, a short state or a wrong sum fails the commit and changes nothing', () => {
    const data = sourceState();
    const cases: FsmCommand[][] = [
      // The second chunk skipped.
      steps(data, 256).filter((c) => !(c.type === 'restore-chunk' && c.seq === 1)),
      // The last chunk never arrives.
      steps(data, 256).filter((c) => !(c.type === 'restore-chunk' && (c.seq + 1) * 256 >= data.length)),
      // A byte differs from what begin announced.
      steps(data, 256).map((c) =>
        c.type === 'restore-begin'
          ? { ...c, sha256: sha(Buffer.concat([data.subarray(1), Buffer.from([0])])) }
          : c,
      ),
      // Another restore began meanwhile: the first's commit is refused.
      [
        ...steps(data, 256).slice(0, -1),
        ...steps(data, 256, 'r2').slice(0, 1),
        { type: 'restore-commit', restoreId: 'r1' },
      ],
    ];
    for (const commands of cases) {
      const d = new FsmDriver();
      d.set('old', 'kept');
      const before = d.fsm.kvIndex();
      const results = commands.map((c) => restoreResult(d.apply(c)));
      expect(results.at(-1)?.ok).toBe(false);
      expect(results.at(-1)?.error).toMatch(/r1/u);
      expect(text(d.fsm.getKey('old')?.value)).toBe('kept');
      expect(d.fsm.list('a/')).toHaveLength(0);
      expect(d.fsm.kvIndex()).toBe(before);
    }
  });

  it('encodes restore commands exactly and asserts on an oversized chunk', () => {
    const data = new Uint8Array([1, 2, 3]);
    for (const command of steps(data, 2)) expect(decodeCommand(encodeCommand(command))).toEqual(command);
    const tooLarge: FsmCommand = {
      type: 'restore-chunk',
      restoreId: 'r',
      seq: 0,
      data: new Uint8Array(restoreChunkBytesMax + 1),
    };
    expect(() => encodeCommand(tooLarge)).toThrow(RaftInvariantError);
  });
});
