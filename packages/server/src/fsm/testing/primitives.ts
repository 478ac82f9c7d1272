import { isPrimitiveKind, type PrimitiveKind } from '@conclave/protocol';
import { Packr } from 'msgpackr';
import type { ConclaveFsm } from '../fsm.js';
import type { ElectionState } from '../primitives/election.js';
import { fenceGroupStride, fencesRowKey } from '../primitives/fences.js';
import type { LockState } from '../primitives/lock.js';
import { kindMachines } from '../primitives/registry.js';
import { heldRowOf, holdRowKey, resultsRowKey } from '../primitives/rows.js';
import { bytes, FsmDriver, reservedRows } from './driver.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** A primitive row's kind and decoded state. */
export function primitiveState(row: { key: string; value: Uint8Array }): {
  kind: PrimitiveKind;
  state: unknown;
} {
  const kind = row.key.slice(2, row.key.indexOf('/'));
  if (!row.key.startsWith('\u0000{') || !isPrimitiveKind(kind)) {
    throw new Error(`not a primitive row: ${JSON.stringify(row.key)}`);
  }
  return { kind, state: kindMachines[kind].decodeState(packr.unpack(row.value)) };
}

/**
 * The count in the group's fences row: that of the last fence or term the group gave, or 0
 * if it never gave one.
 */
export function fenceCount(fsm: Pick<ConclaveFsm, 'getKey'>): number {
  const row = fsm.getKey(fencesRowKey);
  if (row === null) return 0;
  const count: unknown = packr.unpack(row.value);
  if (!Number.isSafeInteger(count)) throw new Error(`the fence count is ${String(count)}`);
  return count as number;
}

/** What a fence (or term) is made of: fence = count × fenceGroupStride + group. */
export function fenceParts(fence: number): { count: number; group: number } {
  return { count: Math.floor(fence / fenceGroupStride), group: fence % fenceGroupStride };
}

/**
 * The `n` fences (or terms) the driver's next entry would hand out, in order: the first
 * counts one past the group's last count and never below the entry's index, each next one
 * one more; each carries the group's id.
 */
export function nextFences(d: FsmDriver, n: number): number[] {
  const first = Math.max(fenceCount(d.fsm) + 1, d.next);
  return Array.from({ length: n }, (_, i) => (first + i) * fenceGroupStride + d.groupId);
}

/** The fence (or term) the driver's next entry would hand out first. */
export function nextFence(d: FsmDriver): number {
  return nextFences(d, 1)[0] as number;
}

/** The fences a primitive's state carries now: a lock holder's fence, an election's term. */
function fencesIn(kind: PrimitiveKind, state: unknown): number[] {
  if (kind === 'lock') {
    const { holder } = state as LockState;
    return holder === null ? [] : [holder.fence];
  }
  if (kind === 'election') {
    const { term } = state as ElectionState;
    return term === 0 ? [] : [term];
  }
  return [];
}

/**
 * What is wrong with the reserved rows, or [] : every row is a primitive, a hold, a
 * session's results or the group's fence count; holds are exactly the sessions each
 * primitive's state names, each a live session's, with the hold's session field naming it;
 * results rows belong to live sessions; the fences and terms the states carry are all
 * distinct, none counted past the stored fence count (given already, never to be again).
 */
export function reservedRowProblems(fsm: ConclaveFsm): string[] {
  const problems: string[] = [];
  const rows = reservedRows(fsm);
  const keys = new Set(rows.map((row) => row.key));
  const live = (session: string) => fsm.getSession(session) !== null;
  const fences = new Map<number, string>();
  for (const row of rows) {
    const shown = JSON.stringify(row.key);
    if (row.key === fencesRowKey) {
      const count: unknown = packr.unpack(row.value);
      if (!Number.isSafeInteger(count) || (count as number) < 1) {
        problems.push(`${shown}: a fence count of ${String(count)}`);
      }
      if (row.session !== null) problems.push(`${shown}: the fence count has a session`);
    } else if (row.key.startsWith('\u0000{')) {
      const { kind, state } = primitiveState(row);
      if (row.session !== null) problems.push(`${shown}: a primitive row has a session`);
      for (const fence of fencesIn(kind, state)) {
        const other = fences.get(fence);
        if (other !== undefined) problems.push(`${shown}: fence ${fence} is ${other}'s too`);
        fences.set(fence, shown);
        if (fenceParts(fence).count > fenceCount(fsm)) {
          problems.push(`${shown}: fence ${fence} past the fence count ${fenceCount(fsm)}`);
        }
      }
      for (const session of kindMachines[kind].sessionsOf(state)) {
        if (!keys.has(holdRowKey({ session, rowKey: row.key })))
          problems.push(`${shown}: no hold for ${session}`);
      }
    } else if (row.key.startsWith('\u0000h\u0000')) {
      const held = heldRowOf(row.key) as string;
      const session = row.key.slice(3, row.key.indexOf('\u0000', 3));
      if (row.session !== session) problems.push(`${shown}: session field ${row.session}`);
      if (!live(session)) problems.push(`${shown}: a hold of a gone session`);
      const target = fsm.getKey(held);
      if (target === null) {
        problems.push(`${shown}: holds a missing row`);
        continue;
      }
      const { kind, state } = primitiveState(target);
      if (!kindMachines[kind].sessionsOf(state).includes(session)) {
        problems.push(`${shown}: the row does not name ${session}`);
      }
    } else if (row.key.startsWith('\u0000r\u0000')) {
      const session = row.key.slice(3);
      if (row.key !== resultsRowKey(session) || row.session !== session)
        problems.push(`${shown}: session field`);
      if (!live(session)) problems.push(`${shown}: results of a gone session`);
    } else {
      problems.push(`${shown}: not a primitive, hold, results or fences row`);
    }
  }
  return problems;
}

/** The reserved rows that name `session`: in their session field, their key or their state. */
export function rowsNaming(fsm: ConclaveFsm, session: string): string[] {
  return reservedRows(fsm)
    .filter(
      (row) =>
        row.session === session ||
        row.key === resultsRowKey(session) ||
        row.key.startsWith(`\u0000h\u0000${session}\u0000`) ||
        (row.key.startsWith('\u0000{') && statesSessions(row).includes(session)),
    )
    .map((row) => row.key);
}

function statesSessions(row: { key: string; value: Uint8Array }): readonly string[] {
  const { kind, state } = primitiveState(row);
  return kindMachines[kind].sessionsOf(state);
}

/**
 * A group with every kind of primitive in use by three sessions (s3's behavior: delete),
 * with holders, waiters, candidates, ephemeral entries and remembered results, beside user
 * keys, one of them locked by s1.
 */
export function everyKind(d: FsmDriver = new FsmDriver()): FsmDriver {
  d.createSession('s1');
  d.createSession('s2');
  d.createSession('s3', { behavior: 'delete' });
  d.set('user/a', 'a');
  d.set('b', 'b');
  d.kv({ verb: 'lock', key: 'user/locked', value: bytes('held'), session: 's1' });
  const seqs = new Map<string, number>();
  const as = (session: string) => {
    const seq = (seqs.get(session) ?? 0) + 1;
    seqs.set(session, seq);
    return { session, seq };
  };
  d.prim('counter', 'C', 'increment', { delta: 5 }, as('s1'));
  d.prim('counter', 'C2', 'set', { value: -3 });
  d.prim('value', 'V', 'set', { value: bytes('eph'), ephemeral: true }, as('s2'));
  d.prim('value', 'V2', 'set', { value: bytes('durable') });
  d.prim('lock', 'L', 'acquire', {}, as('s1'));
  d.prim('lock', 'L', 'acquire', {}, as('s2'));
  d.prim('lock', 'L', 'acquire', {}, as('s3'));
  d.prim('lock', 'L2', 'tryAcquire', {}, as('s3'));
  d.prim('election', 'E', 'enter', { candidate: 'a' }, as('s1'));
  d.prim('election', 'E', 'enter', { candidate: 'b' }, as('s2'));
  d.prim('election', 'E', 'enter', { candidate: 'c' }, as('s3'));
  d.prim('semaphore', 'S', 'setPermits', { permits: 2 });
  d.prim('semaphore', 'S', 'acquire', { permits: 2 }, as('s1'));
  d.prim('semaphore', 'S', 'acquire', { permits: 1 }, as('s2'));
  d.prim('semaphore', 'S', 'acquire', { permits: 1 }, as('s3'));
  d.prim('map', 'M', 'put', { key: 'k1', value: bytes('v1') }, as('s1'));
  d.prim('map', 'M', 'put', { key: 'k2', value: bytes('v2'), ephemeral: true }, as('s3'));
  d.prim('map', 'M', 'insert', { key: 'k3', value: bytes('v3'), ephemeral: true }, as('s2'));
  d.prim('set', 'T', 'add', { key: 'x' });
  d.prim('set', 'T', 'add', { key: 'y', ephemeral: true }, as('s2'));
  // A refusal, remembered as a result too.
  d.prim('lock', 'L', 'release', { fence: 1 }, as('s2'));
  return d;
}
