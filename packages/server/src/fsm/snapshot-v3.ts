import { assert, RaftInvariantError } from '@conclave/raft';
import { PartsDigest } from './parts-digest.js';
import type { StagedRestore } from './snapshot-codec.js';
import { SnapshotPartsReader } from './snapshot-parts.js';
import { natural, packr, SnapshotPartError } from './snapshot-rows.js';

/**
 * A version 3 snapshot's restore in progress: [restoreId, bytes, sha256, nextSeq, chunks],
 * raw byte slices of the snapshot being restored. Loaded as decoded rows, as version 4
 * stages them: the slices are cut into whole parts, chained into the parts digest and read
 * (its whole-bytes sha256 is not what a commit names now, so it is not used). Slices that end inside
 * a part, or parts that do not read, load as no staging at all, so the restore's commit is
 * refused; every server loading the same snapshot decides the same.
 */
export function stagingFromV3(wire: unknown): StagedRestore | null {
  assert(Array.isArray(wire) && wire.length === 5, 'v3 snapshot restore staging: 5 fields');
  const [restoreId, , , nextSeq, chunks] = wire as unknown[];
  assert(typeof restoreId === 'string', 'v3 staging restoreId is a string');
  natural(nextSeq, 'v3 staging nextSeq');
  assert(
    Array.isArray(chunks) && chunks.every((c) => c instanceof Uint8Array),
    'v3 staging chunks are bytes',
  );
  const data = Buffer.concat(chunks as Uint8Array[]);
  const digest = PartsDigest.start();
  const reader = new SnapshotPartsReader({ keepRows: true });
  try {
    for (const part of wholeParts(data)) {
      digest.update(part);
      reader.push(part);
    }
  } catch (error) {
    if (error instanceof SnapshotPartError) return null;
    throw error;
  }
  return { restoreId, parts: reader.parts, digest: digest.state(), progress: reader.progress() };
}

/** The msgpack values' byte ranges; throws SnapshotPartError if the bytes end inside one or do not decode. */
function wholeParts(data: Buffer): Uint8Array[] {
  const parts: Uint8Array[] = [];
  if (data.byteLength === 0) return parts;
  try {
    packr.unpackMultiple(data, (_value: unknown, start?: number, end?: number) => {
      assert(start !== undefined && end !== undefined, 'msgpackr reports each value’s byte range');
      parts.push(data.subarray(start, end));
    });
  } catch (error) {
    if (error instanceof RaftInvariantError) throw error;
    throw new SnapshotPartError('the staged bytes do not end on a whole part');
  }
  return parts;
}
