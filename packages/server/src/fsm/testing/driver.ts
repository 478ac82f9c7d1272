import type { PrimitiveKind } from '@conclave/protocol';
import { type Entry, EntryType } from '@conclave/raft';
import type { StoreReader } from '../../state/index.js';
import { encodeCommand, type FsmCommand, type FsmResult } from '../commands.js';
import { ConclaveFsm, type FsmLimits } from '../fsm.js';
import { readPrimitive } from '../primitives/engine.js';
import type { Args } from '../primitives/kind.js';
import { kvsTable } from '../tables.js';
import type { KvEntry, KvOp, SessionSpec, TxnOutcome } from '../types.js';

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array | undefined): string => new TextDecoder().decode(value);

/**
 * Feeds an FSM commands as consecutive Raft entries (index 1, 2, ...), like a group would:
 * group `groupId` (0 unless given), whose id every fence the FSM gives carries.
 */
export class FsmDriver {
  readonly fsm: ConclaveFsm;
  readonly groupId: number;
  /** Every entry applied so far, to replay on another FSM. */
  readonly entries: Entry[] = [];
  private nextIndex = 1;

  constructor(limits: Partial<FsmLimits> = {}, options: { groupId?: number } = {}) {
    this.groupId = options.groupId ?? 0;
    this.fsm = new ConclaveFsm(limits, { groupId: this.groupId });
  }

  /** The index the next command will get. */
  get next(): number {
    return this.nextIndex;
  }

  /** Skips indexes, as no-op and membership entries do (they never reach the FSM). */
  skip(count: number): void {
    this.nextIndex += count;
  }

  apply(command: FsmCommand): FsmResult {
    const entry: Entry = {
      term: 1,
      index: this.nextIndex++,
      type: EntryType.Normal,
      data: encodeCommand(command),
    };
    this.entries.push(entry);
    return this.fsm.apply(entry);
  }

  kv(op: KvOp): { ok: boolean; index: number; error: { code: string; message: string } | null } {
    const result = this.apply({ type: 'kv', op });
    if (result.type !== 'kv') throw new Error(`expected a kv result, got ${result.type}`);
    return result;
  }

  set(key: string, value: string, flags?: number): number {
    return this.kv({ verb: 'set', key, value: bytes(value), ...(flags === undefined ? {} : { flags }) })
      .index;
  }

  txn(ops: readonly KvOp[]): TxnOutcome {
    const result = this.apply({ type: 'txn', ops });
    if (result.type !== 'txn') throw new Error(`expected a txn result, got ${result.type}`);
    if (result.error !== null) throw new Error(`the txn was refused: ${result.error.message}`);
    return result.outcome;
  }

  createSession(
    id: string,
    fields: Partial<Omit<SessionSpec, 'id'>> = {},
    createIndex: number | null = null,
  ) {
    const session: SessionSpec = {
      id,
      name: fields.name ?? '',
      node: fields.node ?? 'node-1',
      ttlSeconds: fields.ttlSeconds ?? 0,
      behavior: fields.behavior ?? 'release',
      lockDelayMs: fields.lockDelayMs ?? 15_000,
    };
    const result = this.apply({ type: 'session-create', session, createIndex });
    if (result.type !== 'session-create') throw new Error(`expected session-create, got ${result.type}`);
    if (result.error !== null) throw new Error(`the session was refused: ${result.error.message}`);
    return result.session;
  }

  destroySession(id: string) {
    const result = this.apply({ type: 'session-destroy', id });
    if (result.type !== 'session-destroy') throw new Error(`expected session-destroy, got ${result.type}`);
    return result;
  }

  /** A primitive write (fsm/primitives/), with the caller's session and seq if given. */
  prim(
    kind: PrimitiveKind,
    name: string,
    op: string,
    args: Args = {},
    caller: { session?: string | null; seq?: number | null } = {},
  ): PrimResult {
    const { session = null, seq = null } = caller;
    const result = this.apply({ type: 'prim', kind, name, op, args, session, seq });
    if (result.type !== 'prim') throw new Error(`expected a prim result, got ${result.type}`);
    return result;
  }

  /** A primitive read (or one group's part of a gather read) against the FSM's state now. */
  read(kind: PrimitiveKind, name: string, op: string, args: Args = {}) {
    return readPrimitive(kvReader(this.fsm), { kind, name, op, args });
  }
}

export type PrimResult = Extract<FsmResult, { type: 'prim' }>;

/**
 * The FSM's kv table as the reader readPrimitive takes, through its public queries: getKey
 * finds any row, and list with a non-empty prefix returns every row under it, reserved ones
 * included (only the empty prefix leaves them out).
 */
export function kvReader(fsm: ConclaveFsm): Pick<StoreReader, 'first' | 'prefix'> {
  return {
    first: ((table, index, key) => {
      if (table !== (kvsTable as unknown) || index !== 'id') throw new Error('kvReader reads kvs by id');
      return fsm.getKey(key);
    }) as StoreReader['first'],
    prefix: ((table, index, prefix) => {
      if (table !== (kvsTable as unknown) || index !== 'id' || prefix === '') {
        throw new Error('kvReader lists kvs by a non-empty id prefix');
      }
      return fsm.list(prefix);
    }) as StoreReader['prefix'],
  };
}

/** Every primitive row, hold, results row and the fence count: the kv rows under the reserved prefix. */
export function reservedRows(fsm: Pick<ConclaveFsm, 'list'>): KvEntry[] {
  return fsm.list('\u0000');
}

/**
 * A source group's state as user snapshot parts: `skipEntries` empty entries first (applied
 * far past a fresh log), a session holding a lock, and `keys` keys of 100 KiB values, so the
 * kv rows take several parts.
 */
export function userSnapshotParts(options: { keys: number; skipEntries: number }): Uint8Array[] {
  const d = new FsmDriver();
  if (options.skipEntries > 0) d.skip(options.skipEntries);
  d.createSession('s1', { node: 'n1' });
  for (let i = 0; i < options.keys; i++) d.set(`a/${i}`, `v${i}`.padEnd(100 * 1024, '.'), i);
  d.kv({ verb: 'lock', key: 'lock', session: 's1' });
  const parts: Uint8Array[] = [];
  const reader = d.fsm.openSnapshotParts();
  for (let part = reader.next(); part !== null; part = reader.next()) parts.push(part);
  return parts;
}
