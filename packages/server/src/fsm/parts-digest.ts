import { createHash } from 'node:crypto';
import { assert } from '@conclave/raft';

/** The bytes of a digest, and of the chain's state. */
export const partsDigestBytes = 32;

/** The chain's state between parts: what a Raft snapshot taken mid-restore carries. */
export interface PartsDigestState {
  /** d_i, the digest of every part so far (32 zero bytes before the first). */
  readonly digest: Uint8Array;
  /** Bytes of the parts so far. */
  readonly bytes: number;
}

/**
 * The digest a restore-commit names of a group's parts, chained one part at a time:
 * d_0 = 32 zero bytes, d_i = SHA-256(d_{i-1} || part_i). Why a chain and not one SHA-256
 * of the concatenation: its whole state between parts is d_i, 32 bytes a Raft snapshot can
 * carry (node's `Hash` cannot be saved), so a server that installs a snapshot mid-restore
 * reaches the commit's verdict like one that applied every part, and each part is hashed
 * by native code. Part boundaries are part of the digest: the same bytes cut otherwise
 * differ, which is right, as each part is one command.
 */
export class PartsDigest {
  private constructor(
    private current: Uint8Array,
    private total: number,
  ) {}

  static start(): PartsDigest {
    return new PartsDigest(new Uint8Array(partsDigestBytes), 0);
  }

  /** Resumes a chain from a saved state (its decoder validated it; asserted again here). */
  static resume(state: PartsDigestState): PartsDigest {
    assert(state.digest.byteLength === partsDigestBytes, 'a parts digest state holds 32 bytes');
    assert(Number.isSafeInteger(state.bytes) && state.bytes >= 0, 'a parts digest state counts bytes');
    return new PartsDigest(new Uint8Array(state.digest), state.bytes);
  }

  /** The hex digest of `parts`, in one go (the proposer's side, tests). */
  static hexOf(parts: Iterable<Uint8Array>): string {
    const digest = PartsDigest.start();
    for (const part of parts) digest.update(part);
    return digest.hex();
  }

  /** Chains one part. */
  update(part: Uint8Array): void {
    this.current = createHash('sha256').update(this.current).update(part).digest();
    this.total += part.byteLength;
  }

  /** Bytes of the parts chained so far. */
  get bytes(): number {
    return this.total;
  }

  /** The digest so far, 64 lowercase hex digits. */
  hex(): string {
    return Buffer.from(this.current.buffer, this.current.byteOffset, this.current.byteLength).toString('hex');
  }

  /** The state, with its own copy of the digest's bytes: a snapshot holding it may outlive later parts. */
  state(): PartsDigestState {
    return { digest: new Uint8Array(this.current), bytes: this.total };
  }
}
