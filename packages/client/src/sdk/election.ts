import type { ElectionTerm } from '@conclave/protocol';
import type { CallOptions } from '../call.js';
import { withSignal } from './abort.js';
import {
  isRefusal,
  type PrimitiveCaller,
  type PrimitiveTarget,
  type ReadCallOptions,
  type WriteCallOptions,
} from './caller.js';
import { type EventsOptions, type StreamItem, statesOf, streamOf } from './events.js';
import { Hold } from './hold.js';
import { expired, type Lease } from './session.js';
import { fields, integer, textOrNull, texts } from './wire.js';

/**
 * A leader election. Candidates stand in line, bound to their sessions; the first is the
 * leader. The term grows at every change of leader: it fences the leader as a lock's fence
 * fences its holder. A candidate whose session ends leaves the line, and the next leads.
 */
export class ConclaveElection {
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(
    private readonly caller: PrimitiveCaller,
    readonly name: string,
  ) {
    this.target = { kind: 'election', name };
  }

  /**
   * Stands `candidate` (an id unique in this election) for the connection's session; it
   * leads when first in line. Entering again with the same id and session is a no-op; an id
   * another session stands with fails with CANDIDATE_EXISTS. Aborting `signal` rejects with
   * its reason, withdrawing a candidacy that was made meanwhile.
   */
  async enter(candidate: string, options: CallOptions = {}): Promise<Candidacy> {
    const lease = await this.caller.session.lease(options.signal);
    const candidacy = () => new Candidacy({ caller: this.caller, target: this.target, lease, candidate });
    try {
      // No signal on the write: a candidacy (a leadership, maybe) must not go unknown.
      await this.caller.write(this.target, 'enter', { candidate }, { lease });
    } catch (error) {
      if (isRefusal(error)) throw error;
      // It may have applied: withdraw, or give the session up if even that fails.
      await candidacy()
        .withdraw()
        .catch((failure: unknown) => {
          if (lease.ended) return;
          const why = failure instanceof Error ? failure.message : String(failure);
          this.caller.session.abandon(
            lease,
            expired(
              `session ${lease.id} was given up: it could not withdraw candidate ${JSON.stringify(candidate)} (${why})`,
            ),
          );
        });
      throw error;
    }
    const entered = candidacy();
    if (options.signal?.aborted === true) await entered.withdraw().catch(() => undefined);
    options.signal?.throwIfAborted();
    return entered;
  }

  /** The term, the leader (null when none stands) and the candidates in line. */
  async term(options: ReadCallOptions = {}): Promise<ElectionTerm> {
    const { result } = await this.caller.read(this.target, 'term', {}, options);
    return decodeTerm(result);
  }

  /**
   * The election now, then after every change (of leader or line), in order: built on
   * `events()`, so none is left out or merged with the next. With `index` (above 0), starts after that
   * version instead (no first state). Ends when `signal` aborts.
   */
  watch(options: CallOptions & { readonly index?: number } = {}): AsyncGenerator<ElectionTerm> {
    const { index, ...rest } = options;
    return statesOf(
      this.events({ ...rest, ...(index === undefined || index === 0 ? {} : { after: index }) }),
    );
  }

  /**
   * The election's changes (see StreamItem): a `reset` with the term, leader and line now
   * (unless resuming `after` a version), then a `change` at every entry, withdrawal and
   * change of leader, oldest first, each once. Ends when `signal` aborts.
   */
  events(options: EventsOptions = {}): AsyncGenerator<StreamItem<ElectionTerm>, void, undefined> {
    return streamOf({
      caller: this.caller,
      target: this.target,
      events: options,
      read: async (placement) => {
        const answer = await this.caller.read(this.target, 'term', {}, placement);
        return { state: decodeTerm(answer.result), index: answer.index };
      },
      decode: (wire) => (wire === null ? { term: 0, leader: null, candidates: [] } : decodeTerm(wire)),
    });
  }

  /** Puts `candidate` first in line: it leads (a new term). NOT_A_CANDIDATE if it does not stand. */
  async anoint(candidate: string, options: WriteCallOptions = {}): Promise<ElectionTerm> {
    return this.change('anoint', candidate, options);
  }

  /** Puts `candidate` next in line after the leader. NOT_A_CANDIDATE if it does not stand. */
  async promote(candidate: string, options: WriteCallOptions = {}): Promise<ElectionTerm> {
    return this.change('promote', candidate, options);
  }

  /** Takes `candidate` out of line, whichever session it stands for (a no-op if it does not stand). */
  async evict(candidate: string, options: WriteCallOptions = {}): Promise<ElectionTerm> {
    return this.change('evict', candidate, options);
  }

  private async change(op: string, candidate: string, options: WriteCallOptions): Promise<ElectionTerm> {
    const { result } = await this.caller.write(this.target, op, { candidate }, options);
    return decodeTerm(result);
  }
}

/**
 * A candidate standing for the connection's session. It is lost when that session ends
 * (`lost`, the 'lost' event, `signal`), and the line moves on without it. `await using`
 * withdraws it at the end of the block.
 */
export class Candidacy extends Hold implements AsyncDisposable {
  readonly election: string;
  readonly candidate: string;
  private readonly caller: PrimitiveCaller;
  private readonly target: PrimitiveTarget;

  /** @internal Handles are made by the connection (`connect()`), not by callers. */
  constructor(options: {
    caller: PrimitiveCaller;
    target: PrimitiveTarget;
    lease: Lease;
    candidate: string;
  }) {
    super(options.lease, {
      lostCode: 'SESSION_EXPIRED',
      what: `candidate ${JSON.stringify(options.candidate)} of election ${JSON.stringify(options.target.name)}`,
      onEnd: () => undefined,
    });
    this.caller = options.caller;
    this.target = options.target;
    this.election = options.target.name;
    this.candidate = options.candidate;
  }

  /** The election's term, leader and line now. */
  async term(options: ReadCallOptions = {}): Promise<ElectionTerm> {
    const { result } = await this.caller.read(this.target, 'term', {}, options);
    return decodeTerm(result);
  }

  /**
   * True if this candidate leads now (a consistent read by default). Leadership can end
   * the moment after; fence the work with the term, or follow `signal`.
   */
  async isLeader(options: ReadCallOptions = {}): Promise<boolean> {
    if (!this.held) return false;
    const term = await this.term({ consistency: 'consistent', ...options });
    return this.held && term.leader === this.candidate;
  }

  /** Leaves the line (the next candidate leads if this one did). A no-op once lost or withdrawn. */
  async withdraw(options: CallOptions = {}): Promise<void> {
    await this.giveBack({
      write: () =>
        this.caller.write(
          this.target,
          'withdraw',
          { candidate: this.candidate },
          { lease: this.lease, ...withSignal(options.signal) },
        ),
      // Evicted, and the id taken by another session since: this candidacy is gone anyway.
      lostCodes: ['NOT_A_CANDIDATE', 'SESSION_EXPIRED'],
      lostMessage: (error) =>
        `candidate ${JSON.stringify(this.candidate)} no longer stands: ${error.message}`,
      whenLost: 'return',
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.withdraw();
  }
}

function decodeTerm(result: unknown): ElectionTerm {
  const o = fields(result, 'election term');
  return {
    term: integer(o, 'term', 'election term'),
    leader: textOrNull(o, 'leader', 'election term'),
    candidates: texts(o, 'candidates', 'election term'),
  };
}
