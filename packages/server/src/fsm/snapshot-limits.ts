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
