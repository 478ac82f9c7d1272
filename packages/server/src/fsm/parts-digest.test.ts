import { createHash } from 'node:crypto';
import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { PartsDigest } from './parts-digest.js';

const sha = (...chunks: Uint8Array[]) => {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest();
};

const parts = [new Uint8Array([1, 2, 3]), new Uint8Array(), new Uint8Array(200).fill(7), new Uint8Array([9])];

describe('PartsDigest', () => {
  it('is the chain d_0 = 32 zero bytes, d_i = SHA-256(d_{i-1} || part_i), counting the bytes', () => {
    let expected: Uint8Array = new Uint8Array(32);
    const digest = PartsDigest.start();
    expect(digest.hex()).toBe('0'.repeat(64));
    for (const part of parts) {
      expected = sha(expected, part);
      digest.update(part);
      expect(digest.hex()).toBe(Buffer.from(expected).toString('hex'));
    }
    expect(digest.bytes).toBe(204);
    expect(PartsDigest.hexOf(parts)).toBe(digest.hex());
  });

  it('depends on where the parts are cut, not only on their bytes', () => {
    const whole = Buffer.concat(parts);
    expect(PartsDigest.hexOf([whole])).not.toBe(PartsDigest.hexOf(parts));
    expect(PartsDigest.hexOf([whole])).not.toBe(sha(whole).toString('hex'));
  });

  it('resumes from a saved state to the same digest, and a saved state does not move with later parts', () => {
    const digest = PartsDigest.start();
    digest.update(parts[0] ?? new Uint8Array());
    const saved = digest.state();
    const copy = Buffer.from(saved.digest);
    for (const part of parts.slice(1)) digest.update(part);
    expect(Buffer.from(saved.digest).equals(copy)).toBe(true);
    expect(saved.bytes).toBe(3);
    const resumed = PartsDigest.resume(saved);
    for (const part of parts.slice(1)) resumed.update(part);
    expect(resumed.hex()).toBe(digest.hex());
    expect(resumed.bytes).toBe(digest.bytes);
  });

  it('asserts on a state that is not 32 bytes', () => {
    expect(() => PartsDigest.resume({ digest: new Uint8Array(31), bytes: 0 })).toThrow(RaftInvariantError);
  });
});
