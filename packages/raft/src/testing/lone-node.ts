/**
 * One RawNode driven by hand: a test feeds it crafted messages and looks at exactly what
 * it answers. Its Readys are persisted to a MemoryStorage and advanced on flush().
 */
import type { RaftConfigInput } from '../config.js';
import { createPrng } from '../prng.js';
import { type NodeReady, RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import type { Entry, HardState, Message, NodeId } from '../types.js';
import { entries } from './entries.js';

export class LoneNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  /** Every Ready flushed so far. */
  readonly readys: NodeReady[] = [];

  constructor(options: {
    id: NodeId;
    voters: NodeId[];
    learners?: NodeId[];
    /** Terms of the entries the log starts with, from index 1. */
    logTerms?: number[];
    hardState?: HardState;
    config?: Partial<Omit<RaftConfigInput, 'id'>>;
  }) {
    this.storage = MemoryStorage.bootstrap({ voters: options.voters, learners: options.learners ?? [] });
    this.storage.append(entries(1, options.logTerms ?? []));
    if (options.hardState !== undefined) this.storage.setHardState(options.hardState);
    this.raw = new RawNode({
      config: { id: options.id, prng: createPrng(7), preVote: false, checkQuorum: false, ...options.config },
      storage: this.storage,
    });
  }

  step(message: Message): Message[] {
    this.raw.step(message);
    return this.flush();
  }

  /** Process every pending Ready in contract order; return the messages sent. */
  flush(): Message[] {
    const out: Message[] = [];
    while (this.raw.hasReady()) {
      const ready = this.raw.ready();
      this.readys.push(ready);
      if (ready.snapshot !== null) this.storage.applySnapshot(ready.snapshot);
      this.storage.append(ready.entries);
      if (ready.hardState !== null) this.storage.setHardState(ready.hardState);
      out.push(...ready.messages, ...ready.messagesAfterPersist);
      this.raw.advance();
    }
    return out;
  }

  /** The persisted log, as terms from index firstIndex on. */
  logTerms(): number[] {
    const out: number[] = [];
    for (let i = this.storage.firstIndex(); i <= this.storage.lastIndex(); i++)
      out.push(this.storage.term(i) ?? -1);
    return out;
  }

  log(): Entry[] {
    const lo = this.storage.firstIndex();
    const hi = this.storage.lastIndex() + 1;
    return lo >= hi ? [] : this.storage.entries({ lo, hi, bytesMax: Number.MAX_SAFE_INTEGER });
  }
}

type Base = { from: NodeId; to: NodeId; term: number };

export const msg = {
  app(fields: Base & { index: number; logTerm: number; entries?: Entry[]; commit?: number }): Message {
    return { type: 'app', entries: [], commit: 0, ...fields };
  },
  vote(fields: Base & { index: number; logTerm: number; transfer?: boolean; pre?: boolean }): Message {
    const { pre, ...rest } = fields;
    return { type: pre === true ? 'preVote' : 'vote', transfer: false, ...rest };
  },
  heartbeat(fields: Base & { commit?: number; round?: number }): Message {
    return { type: 'heartbeat', commit: 0, round: 1, ...fields };
  },
  voteResp(fields: Base & { reject: boolean; pre?: boolean }): Message {
    const { pre, ...rest } = fields;
    return { type: pre === true ? 'preVoteResp' : 'voteResp', ...rest };
  },
};
