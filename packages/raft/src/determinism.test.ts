/** Determinism: the same seed and the same inputs give byte-identical outputs. */
import { describe, expect, it } from 'vitest';
import { runChaos } from './testing/chaos.js';
import { serializeReady } from './testing/network.js';

function transcript(seed: number): string[] {
  const { net } = runChaos({ seed, voters: ['a', 'b', 'c', 'd', 'e'], ticks: 250 });
  return net.readys.map(({ id, ready }) => `${id} ${serializeReady(ready)}`);
}

describe('determinism', () => {
  it('two clusters built from the same seed and fed the same inputs produce identical Ready sequences', () => {
    const first = transcript(42);
    const second = transcript(42);
    expect(first.length).toBeGreaterThan(1000);
    expect(second).toEqual(first);
    expect(second.join('\n')).toBe(first.join('\n'));
  });

  it('a different seed gives a different run', () => {
    expect(transcript(43)).not.toEqual(transcript(42));
  });

  it('the serialization captures every field of a Ready, bytes included', () => {
    const { net } = runChaos({ seed: 7, voters: ['a', 'b', 'c'], ticks: 50 });
    const withEntries = net.readys.find(({ ready }) => ready.entries.some((e) => e.data.byteLength > 0));
    expect(withEntries).toBeDefined();
    if (withEntries !== undefined) {
      const text = serializeReady(withEntries.ready);
      for (const key of [
        'softState',
        'hardState',
        'entries',
        'snapshot',
        'messages',
        'messagesAfterPersist',
        'committedEntries',
        'readStates',
        'mustSync',
        'droppedReads',
      ]) {
        expect(text).toContain(`"${key}"`);
      }
      expect(text).toMatch(/bytes:\d+/);
    }
  });
});
