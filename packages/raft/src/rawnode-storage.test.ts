import { describe, expect, it } from 'vitest';
import { createPrng } from './prng.js';
import { RawNode } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import type { Snapshot } from './types.js';

/** A storage whose snapshot bytes live on disk: reading them is costly and counted. */
class CountingStorage extends MemoryStorage {
  snapshotReads = 0;

  override snapshot(): Snapshot {
    this.snapshotReads++;
    return super.snapshot();
  }
}

describe('RawNode reads of the snapshot', () => {
  it('createSnapshot checks its index against the snapshot metadata without loading the bytes', () => {
    const storage = new CountingStorage({ confState: { voters: ['a'], learners: [] } });
    const raw = new RawNode({ config: { id: 'a', prng: createPrng(1) }, storage });
    const taken = raw.createSnapshot({ index: 0, data: new Uint8Array([1, 2, 3]) });
    expect(taken.metadata.index).toBe(0);
    expect(taken.metadata.confState.voters).toEqual(['a']);
    expect(storage.snapshotReads).toBe(0);
  });
});
