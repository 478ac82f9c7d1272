import { afterEach, describe, expect, it } from 'vitest';
import { ConclaveError } from '../errors.js';
import { SnapshotCursors, type SnapshotPartSource } from './snapshot-cursors.js';
import { parseGroupCall } from './validate-call.js';

/** Parts of the given sizes, counting how many were encoded (taken from the source). */
function source(sizes: readonly number[]): SnapshotPartSource & { encoded: number } {
  const parts = sizes.map((size, i) => new Uint8Array(size).fill(i + 1));
  const counted = {
    encoded: 0,
    next: () => {
      const part = parts[counted.encoded] ?? null;
      if (part !== null) counted.encoded++;
      return part;
    },
  };
  return counted;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConclaveError);
  return (error as ConclaveError).code;
}

let clock = 0;
const registries: SnapshotCursors[] = [];
function cursors(limits: ConstructorParameters<typeof SnapshotCursors>[0] = {}): SnapshotCursors {
  const registry = new SnapshotCursors({ now: () => clock, ...limits });
  registries.push(registry);
  return registry;
}

afterEach(() => {
  for (const registry of registries.splice(0)) registry.closeAll();
  clock = 0;
});

describe('snapshot cursors', () => {
  it('reads parts up to bytesMax, at least one, keeping an overflowing part for the next read', async () => {
    const registry = cursors();
    const parts = source([300, 300, 500, 100]);
    const cursorId = registry.open({ groupId: 0, openSource: () => parts }).cursorId;
    const read = (bytesMax: number) => registry.read({ groupId: 0, cursorId, bytesMax });
    // 300 + 300 fit in 700; the 500 was encoded, does not fit, and is not lost.
    expect((await read(700)).parts.map((p) => p.byteLength)).toEqual([300, 300]);
    expect(parts.encoded).toBe(3);
    // One part even when it alone is over bytesMax, so a read always makes progress.
    const one = await read(10);
    expect(one.parts.map((p) => p.byteLength)).toEqual([500]);
    expect(one.parts[0]?.[0]).toBe(3);
    const last = await read(10);
    expect(last.parts.map((p) => p.byteLength)).toEqual([100]);
    expect(last.done).toBe(false);
    expect(await read(10)).toEqual({ parts: [], done: true });
    // Done: the cursor closed itself.
    expect(registry.openCount).toBe(0);
    expect(await refusal(read(10))).toBe('SNAPSHOT_CURSOR_GONE');
  });

  it('caps a read at readBytesMax whatever the caller asks', async () => {
    const registry = cursors({ limits: { readBytesMax: 1000 } });
    const cursorId = registry.open({ groupId: 0, openSource: () => source([400, 400, 400, 400]) }).cursorId;
    const read = await registry.read({ groupId: 0, cursorId, bytesMax: 1_000_000 });
    expect(read.parts.map((p) => p.byteLength)).toEqual([400, 400]);
  });

  it('closes a cursor idle past cursorIdleMs, but not one read within it', async () => {
    const registry = cursors({ limits: { cursorIdleMs: 1_000 } });
    const cursorId = registry.open({ groupId: 2, openSource: () => source([10, 10, 10]) }).cursorId;
    clock += 1_000;
    expect((await registry.read({ groupId: 2, cursorId, bytesMax: 10 })).parts).toHaveLength(1);
    clock += 1_000;
    expect((await registry.read({ groupId: 2, cursorId, bytesMax: 10 })).parts).toHaveLength(1);
    clock += 1_001;
    registry.sweep();
    expect(registry.openCount).toBe(0);
    expect(await refusal(registry.read({ groupId: 2, cursorId, bytesMax: 10 }))).toBe('SNAPSHOT_CURSOR_GONE');
  });

  it('finds an idle cursor gone on its next use even before a sweep ran', async () => {
    const registry = cursors({ limits: { cursorIdleMs: 1_000 } });
    const cursorId = registry.open({ groupId: 0, openSource: () => source([10]) }).cursorId;
    clock += 1_001;
    expect(await refusal(registry.read({ groupId: 0, cursorId, bytesMax: 10 }))).toBe('SNAPSHOT_CURSOR_GONE');
  });

  it('refuses a cursor of another group, and a second read of one cursor at a time', async () => {
    const registry = cursors({ limits: { partsPerTurnMax: 1 } });
    const cursorId = registry.open({ groupId: 0, openSource: () => source([10, 10, 10]) }).cursorId;
    expect(await refusal(registry.read({ groupId: 1, cursorId, bytesMax: 100 }))).toBe(
      'SNAPSHOT_CURSOR_GONE',
    );
    // One part per turn: the first read is still encoding when the second arrives.
    const first = registry.read({ groupId: 0, cursorId, bytesMax: 100 });
    expect(await refusal(registry.read({ groupId: 0, cursorId, bytesMax: 100 }))).toBe('BAD_REQUEST');
    expect((await first).parts).toHaveLength(3);
  });

  it('ends a read whose cursor was closed while it was encoding', async () => {
    const registry = cursors({ limits: { partsPerTurnMax: 1 } });
    const cursorId = registry.open({ groupId: 0, openSource: () => source([10, 10, 10]) }).cursorId;
    const read = registry.read({ groupId: 0, cursorId, bytesMax: 100 });
    registry.close(cursorId);
    expect(await refusal(read)).toBe('SNAPSHOT_CURSOR_GONE');
  });

  it('opens at most cursorsMax cursors; closing is idempotent and frees a place', async () => {
    const registry = cursors({ limits: { cursorsMax: 2 } });
    const a = registry.open({ groupId: 0, openSource: () => source([1]) }).cursorId;
    registry.open({ groupId: 0, openSource: () => source([1]) });
    // Refused before the source is made: taking a view of the state is not free.
    let made = false;
    const third = () =>
      registry.open({
        groupId: 0,
        openSource: () => {
          made = true;
          return source([1]);
        },
      });
    expect(await refusal(Promise.resolve().then(third))).toBe('OVERLOADED');
    expect(made).toBe(false);
    registry.close(a);
    registry.close(a);
    registry.close('never-opened');
    expect(registry.openCount).toBe(1);
    registry.open({ groupId: 0, openSource: () => source([1]) });
    expect(registry.openCount).toBe(2);
  });

  it('releases every cursor when the server stops, and opens none after', async () => {
    const registry = cursors();
    const cursorId = registry.open({ groupId: 0, openSource: () => source([1]) }).cursorId;
    registry.closeAll();
    expect(registry.openCount).toBe(0);
    expect(await refusal(registry.read({ groupId: 0, cursorId, bytesMax: 10 }))).toBe('SNAPSHOT_CURSOR_GONE');
    expect(
      await refusal(
        Promise.resolve().then(() => registry.open({ groupId: 0, openSource: () => source([1]) }).cursorId),
      ),
    ).toBe('SHUTTING_DOWN');
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => new SnapshotCursors({ limits: { cursorIdleMs: 0 } })).toThrow(ConclaveError);
    expect(() => new SnapshotCursors({ limits: { readBytesMax: 1.5 } })).toThrow(ConclaveError);
  });
});

describe('forwarded snapshot calls', () => {
  it('are parsed field by field, and a malformed one is refused before it runs', () => {
    expect(parseGroupCall({ kind: 'snapshot-open', stale: true })).toEqual({
      kind: 'snapshot-open',
      stale: true,
    });
    expect(parseGroupCall({ kind: 'snapshot-read', cursorId: 'c', bytesMax: 5, extra: 1 })).toEqual({
      kind: 'snapshot-read',
      cursorId: 'c',
      bytesMax: 5,
    });
    expect(parseGroupCall({ kind: 'snapshot-close', cursorId: 'c' })).toEqual({
      kind: 'snapshot-close',
      cursorId: 'c',
    });
    for (const bad of [
      { kind: 'snapshot-open' },
      { kind: 'snapshot-read', cursorId: 'c', bytesMax: -1 },
      { kind: 'snapshot-read', cursorId: '', bytesMax: 1 },
      { kind: 'snapshot-close' },
      { kind: 'snapshot' },
    ]) {
      expect(() => parseGroupCall(bad), JSON.stringify(bad)).toThrow(ConclaveError);
    }
  });
});
