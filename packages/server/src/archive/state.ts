import { Unpackr } from 'msgpackr';
import { decodeSnapshot, type FsmState } from '../fsm/snapshot-codec.js';
import { type ArchiveGroupMeta, archiveInvalid } from './format.js';

export type GroupState = FsmState;

const unpackr = new Unpackr({ useRecords: false, moreTypes: false });

/**
 * KV entries in an FSM snapshot, read from its header alone (the first msgpack value:
 * [version, appliedIndex, kvIndex, sessionIndex, kvCount, sessionCount]), without decoding rows.
 */
export function snapshotKeyCount(data: Uint8Array): number {
  let header: unknown;
  unpackr.unpackMultiple(Buffer.from(data.buffer, data.byteOffset, data.byteLength), (value: unknown) => {
    header = value;
    return false;
  });
  const kvCount: unknown = Array.isArray(header) ? header[4] : undefined;
  if (typeof kvCount !== 'number' || !Number.isSafeInteger(kvCount) || kvCount < 0) {
    throw new Error('an FSM snapshot header has no kv count');
  }
  return kvCount;
}

/**
 * Decodes a group's state from an archive and checks what the FSM would assert on at
 * restore (so a bad archive is refused here, before anything reaches Raft): the encoding,
 * its version, every row, a lock held by a session the state lacks, and the key count.
 */
export function checkGroupState(options: { meta: ArchiveGroupMeta; data: Uint8Array }): GroupState {
  const { meta } = options;
  let state: FsmState;
  try {
    state = decodeSnapshot(options.data);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw archiveInvalid(`group ${meta.groupId}'s state does not decode: ${why}`);
  }
  const sessions = new Set(state.sessions.map((session) => session.id));
  for (const entry of state.kvs) {
    if (entry.session !== null && !sessions.has(entry.session)) {
      throw archiveInvalid(`group ${meta.groupId}: key ${entry.key} is held by a session the archive lacks`);
    }
  }
  if (state.kvs.length !== meta.keys) {
    throw archiveInvalid(`group ${meta.groupId} holds ${state.kvs.length} keys; meta.json says ${meta.keys}`);
  }
  return state;
}
