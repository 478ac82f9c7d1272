/**
 * Rows per encoded chunk at most. A chunk of 256-byte values packs in about 4 ms, so encoding
 * a large state one chunk per step never holds the event loop long (a whole 56 MB state
 * packed at once held it for ~300 ms, past an election timeout).
 */
export const snapshotChunkRows = 4096;

/**
 * A chunk also closes once its rows' estimated size reaches this, so large values make
 * small chunks: 4,096 rows of 512 KiB values would be 2 GiB in one msgpack value.
 */
export const snapshotChunkBytesTarget = 256 * 1024;

/**
 * Largest encoded part (header or chunk). A chunk stays under the target plus one row, and
 * a row under the default limits is at most 2 KiB of key, 512 KiB of value and a session id:
 * about 790 KiB in all. A restore chunk carries one part, and a Raft proposal is at most 1 MiB.
 */
export const snapshotPartBytesMax = 960 * 1024;

/**
 * Largest estimated row (fsm/snapshot-rows.ts) the FSM takes: a chunk closes once it reaches
 * the target, so a part holds under the target plus one row, and this keeps that within
 * snapshotPartBytesMax. Writes and restored rows past it are refused before they reach the
 * state, because a larger row would trip the encoder's assertion at the next snapshot.
 */
export const snapshotRowBytesMax = snapshotPartBytesMax - snapshotChunkBytesTarget;

/**
 * Sessions one group holds at most. The archive reader refuses a snapshot whose keys
 * reference more (snapshotReferencedSessionsMax is this), so the FSM refuses to create more:
 * every snapshot a cluster can take stays one it can restore.
 */
export const groupSessionsMax = 65_536;

/**
 * Default bound on one group's state: the estimated bytes (fsm/snapshot-rows.ts) of its kv
 * and session rows, and on a restore's staged rows likewise. A Raft snapshot holds both,
 * so it stays under 2 x this + snapshotHeaderSlackBytes, which the FSM asserts fits both the
 * Raft core's and the storage's snapshotBytesMax (fsm/quota.ts).
 */
export const groupStateBytesMaxDefault = 224 * 1024 * 1024;

/**
 * What a Raft snapshot holds beyond its rows' estimates: its header part (at most
 * snapshotPartBytesMax). Each chunk's array header fits in the rows' per-row allowance.
 */
export const snapshotHeaderSlackBytes = snapshotPartBytesMax;
