import type { Entry, HardState, Snapshot } from '@conclave/raft';
import type { WriteRecord } from './disk.js';

/**
 * Raft's safety properties, checked incrementally as the world runs: each hook costs time
 * proportional to what just happened (the entries written, applied or committed), except
 * the leader completeness check, which walks the committed log once per election.
 */

export const SafetyCheck = {
  /** At most one leader per term, over the whole run. */
  ElectionSafety: 'electionSafety',
  /** Two logs holding an entry with the same index and term hold the same entry and prefix. */
  LogMatching: 'logMatching',
  /** No two nodes apply different entries at one index. */
  StateMachineSafety: 'stateMachineSafety',
  /** A leader holds every entry committed in an earlier term. */
  LeaderCompleteness: 'leaderCompleteness',
  /** Commit index and term never go backwards, in memory within a life or durably across lives. */
  CommitMonotonic: 'commitMonotonic',
  /** The core hands out committed entries once each, in index order, never below the snapshot. */
  ApplyOrder: 'applyOrder',
  /** A write acknowledged to a client stays applied with the same content everywhere. */
  AckedWriteLost: 'ackedWriteLost',
} as const;
export type SafetyCheck = (typeof SafetyCheck)[keyof typeof SafetyCheck];

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
  readonly check: SafetyCheck;
  readonly seed: number;
  readonly timeMs: number;
  readonly details: string;

  constructor(options: { check: SafetyCheck; seed: number; timeMs: number; details: string }) {
    super(`${options.check} violated (seed ${options.seed}, t=${options.timeMs}ms): ${options.details}`);
    this.check = options.check;
    this.seed = options.seed;
    this.timeMs = options.timeMs;
    this.details = options.details;
  }
}

/** A read-only view of one node's log: durable storage overlaid with its unpersisted entries. */
export interface LogView {
  /** Entries below this index are compacted into the snapshot. */
  firstIndex(): number;
  lastIndex(): number;
  /** The term at `index`, or null when compacted or past the end. */
  term(index: number): number | null;
}

/** What a node reports about each applied index, for the end-of-run sweep. */
export interface AppliedView {
  readonly node: number;
  /** Entries the node applied itself (not those it received inside a snapshot). */
  appliedEntry(index: number): { readonly term: number; readonly data: Uint8Array } | undefined;
}

interface EntryFingerprint {
  readonly term: number;
  readonly data: Uint8Array;
  readonly type: number;
}

interface CommittedEntry {
  readonly term: number;
  /** The term of the leader seen committing it: the true commit term is at most this. */
  readonly commitTerm: number;
}

export class SafetyCheckers {
  readonly #seed: number;
  readonly #nowMs: () => number;
  readonly #leaderByTerm = new Map<number, number>();
  /** `${index}:${term}` → the entry and the term preceding it, from the first node that wrote it. */
  readonly #written = new Map<string, { entry: EntryFingerprint; prevTerm: number; node: number }>();
  /** index → the entry first applied there, by any node. */
  readonly #applied = new Map<number, EntryFingerprint & { node: number }>();
  /** committed[i] describes index i+1, learned from leaders' commit advances. */
  readonly #committed: (CommittedEntry | null)[] = [];
  readonly #acked = new Map<number, EntryFingerprint>();
  readonly #memCommit = new Map<number, HardState>();
  readonly #durable = new Map<number, HardState>();
  readonly #lastApplied = new Map<number, number>();

  constructor(options: { seed: number; nowMs: () => number }) {
    this.#seed = options.seed;
    this.#nowMs = options.nowMs;
  }

  get leadersByTerm(): ReadonlyMap<number, number> {
    return this.#leaderByTerm;
  }

  /** Highest index known committed via a leader's commit advance. */
  get committedIndex(): number {
    return this.#committed.length;
  }

  /** A node (re)starts from durable state: in-memory commit restarts from the durable one. */
  onStart(options: { node: number; hardState: HardState; snapshotIndex: number }): void {
    const { node, hardState } = options;
    const durable = this.#durable.get(node);
    if (durable !== undefined) {
      this.#monotonic({ node, before: durable, after: hardState, what: 'durable state at restart' });
    }
    this.#durable.set(node, hardState);
    this.#memCommit.set(node, hardState);
    this.#lastApplied.set(node, options.snapshotIndex);
  }

  /**
   * `node`'s disk was erased: it comes back as a brand-new server with the same id, so
   * its own history (term, commit, applied index) starts again from zero. The checks
   * across nodes (election safety, log matching, what was applied and acknowledged at
   * each index) keep everything they know.
   */
  onWipe(options: { node: number }): void {
    const { node } = options;
    this.#durable.delete(node);
    this.#memCommit.delete(node);
    this.#lastApplied.delete(node);
  }

  /** A Ready carried a new hard state (in memory; not yet durable). */
  onHardState(options: { node: number; hardState: HardState }): void {
    const before = this.#memCommit.get(options.node);
    if (before !== undefined) {
      this.#monotonic({ node: options.node, before, after: options.hardState, what: 'in-memory hard state' });
    }
    this.#memCommit.set(options.node, options.hardState);
  }

  /** Records reached durable storage (a completed fsync, or the kept prefix of a torn write). */
  onDurable(options: { node: number; records: readonly WriteRecord[]; log: LogView }): void {
    const { node, log } = options;
    for (const record of options.records) {
      switch (record.kind) {
        case 'snapshot':
          this.#checkSnapshot({ node, snapshot: record.snapshot });
          break;
        case 'entry':
          this.#checkWritten({ node, entry: record.entry, log });
          break;
        case 'hardState': {
          const before = this.#durable.get(node);
          if (before !== undefined) {
            this.#monotonic({ node, before, after: record.hardState, what: 'durable hard state' });
          }
          this.#durable.set(node, record.hardState);
          break;
        }
      }
    }
  }

  /** A leader of `term` advanced its commit index to `commit`; `log` is its log at that moment. */
  onLeaderCommit(options: { node: number; term: number; commit: number; log: LogView }): void {
    const { term, commit, log } = options;
    for (let index = this.#committed.length + 1; index <= commit; index++) {
      const entryTerm = log.term(index);
      this.#committed.push(entryTerm === null ? null : { term: entryTerm, commitTerm: term });
    }
  }

  /** `node` became leader of `term` with log `log` (including its not yet persisted entries). */
  onBecomeLeader(options: { node: number; term: number; log: LogView }): void {
    const { node, term, log } = options;
    const previous = this.#leaderByTerm.get(term);
    if (previous !== undefined && previous !== node) {
      this.#fail(SafetyCheck.ElectionSafety, `n${previous} and n${node} both leaders of term ${term}`);
    }
    this.#leaderByTerm.set(term, node);
    const from = log.firstIndex();
    for (let index = from; index <= this.#committed.length; index++) {
      const committed = this.#committed[index - 1];
      if (committed === null || committed === undefined || committed.commitTerm >= term) continue;
      const have = index <= log.lastIndex() ? log.term(index) : null;
      if (have !== committed.term) {
        this.#fail(
          SafetyCheck.LeaderCompleteness,
          `n${node} leader of term ${term} has term ${have} at ${index}, but term ${committed.term} ` +
            `was committed there by term ${committed.commitTerm}`,
        );
      }
    }
  }

  /** The core handed `entry` to `node`'s state machine. */
  onApply(options: { node: number; entry: Entry }): void {
    const { node, entry } = options;
    const last = this.#lastApplied.get(node) ?? 0;
    if (entry.index !== last + 1) {
      this.#fail(SafetyCheck.ApplyOrder, `n${node} applied ${entry.index} right after ${last}`);
    }
    this.#lastApplied.set(node, entry.index);
    const first = this.#applied.get(entry.index);
    if (first === undefined) {
      this.#applied.set(entry.index, { term: entry.term, data: entry.data, type: entry.type, node });
      const acked = this.#acked.get(entry.index);
      if (acked !== undefined && !sameEntry(acked, entry)) {
        this.#fail(SafetyCheck.AckedWriteLost, `n${node} applied ${describe(entry)} over an acked write`);
      }
      return;
    }
    if (!sameEntry(first, entry)) {
      this.#fail(
        SafetyCheck.StateMachineSafety,
        `at index ${entry.index} n${first.node} applied ${describe(first)} but n${node} applied ${describe(entry)}`,
      );
    }
  }

  /** `node` replaced its state machine with a snapshot (from its disk or from the leader). */
  onRestore(options: { node: number; snapshot: Snapshot }): void {
    const { node, snapshot } = options;
    const last = this.#lastApplied.get(node) ?? 0;
    if (snapshot.metadata.index < last) {
      this.#fail(
        SafetyCheck.ApplyOrder,
        `n${node} restored snapshot ${snapshot.metadata.index} after applying ${last}`,
      );
    }
    this.#lastApplied.set(node, snapshot.metadata.index);
    this.#checkSnapshot({ node, snapshot });
  }

  /** A write was acknowledged to a client as committed at `entry.index`. */
  onAck(options: { entry: Entry }): void {
    const { entry } = options;
    const applied = this.#applied.get(entry.index);
    if (applied !== undefined && !sameEntry(applied, entry)) {
      this.#fail(
        SafetyCheck.AckedWriteLost,
        `acked ${describe(entry)} but ${describe(applied)} was applied there`,
      );
    }
    this.#acked.set(entry.index, { term: entry.term, data: entry.data, type: entry.type });
  }

  /**
   * The whole-run sweep, cheap enough for the end of a run or a test's checkpoints: every
   * acked write is still what every node applied at its index, and every live leader holds
   * every acked write it has not compacted.
   */
  checkAll(options: {
    nodes: readonly AppliedView[];
    leaders: readonly { node: number; term: number; log: LogView }[];
  }): void {
    for (const [index, acked] of this.#acked) {
      for (const view of options.nodes) {
        const entry = view.appliedEntry(index);
        if (entry !== undefined && !sameEntry(acked, { ...entry, type: acked.type })) {
          this.#fail(
            SafetyCheck.AckedWriteLost,
            `n${view.node} holds term ${entry.term} at acked index ${index}`,
          );
        }
      }
      for (const leader of options.leaders) {
        if (index < leader.log.firstIndex() || acked.term > leader.term) continue;
        const have = index <= leader.log.lastIndex() ? leader.log.term(index) : null;
        if (have !== acked.term) {
          this.#fail(
            SafetyCheck.AckedWriteLost,
            `leader n${leader.node} (term ${leader.term}) has term ${have} at acked index ${index}`,
          );
        }
      }
    }
  }

  /**
   * Replicas that applied the same prefix hold the same state: compares the state
   * machines' canonical snapshots of nodes at equal applied indexes.
   */
  checkReplicaStates(replicas: readonly { node: number; appliedIndex: number; state: Uint8Array }[]): void {
    const first = new Map<number, { node: number; state: Uint8Array }>();
    for (const replica of replicas) {
      const seen = first.get(replica.appliedIndex);
      if (seen === undefined) {
        first.set(replica.appliedIndex, replica);
      } else if (!sameBytes(seen.state, replica.state)) {
        this.#fail(
          SafetyCheck.StateMachineSafety,
          `n${seen.node} and n${replica.node} both applied through ${replica.appliedIndex} but hold different ` +
            `states: ${preview(seen.state)} vs ${preview(replica.state)}`,
        );
      }
    }
  }

  #checkWritten(options: { node: number; entry: Entry; log: LogView }): void {
    const { node, entry, log } = options;
    const prevTerm = log.term(entry.index - 1);
    if (prevTerm === null) {
      this.#fail(SafetyCheck.LogMatching, `n${node} wrote ${describe(entry)} with no entry before it`);
    }
    const key = `${entry.index}:${entry.term}`;
    const first = this.#written.get(key);
    if (first === undefined) {
      this.#written.set(key, {
        entry: { term: entry.term, data: entry.data, type: entry.type },
        prevTerm,
        node,
      });
      return;
    }
    // Same (index, term) ⇒ same entry and same previous term; by induction the same prefix.
    if (!sameEntry(first.entry, entry) || first.prevTerm !== prevTerm) {
      this.#fail(
        SafetyCheck.LogMatching,
        `index ${entry.index} term ${entry.term}: n${first.node} wrote ${describe(first.entry)} after term ` +
          `${first.prevTerm}, n${node} wrote ${describe(entry)} after term ${prevTerm}`,
      );
    }
  }

  #checkSnapshot(options: { node: number; snapshot: Snapshot }): void {
    const { index, term } = options.snapshot.metadata;
    const applied = this.#applied.get(index);
    if (index > 0 && applied !== undefined && applied.term !== term) {
      this.#fail(
        SafetyCheck.StateMachineSafety,
        `n${options.node} holds a snapshot at ${index} of term ${term}, but term ${applied.term} was applied there`,
      );
    }
  }

  #monotonic(options: { node: number; before: HardState; after: HardState; what: string }): void {
    const { node, before, after, what } = options;
    if (after.commit < before.commit || after.term < before.term) {
      this.#fail(
        SafetyCheck.CommitMonotonic,
        `n${node} ${what} went from term ${before.term} commit ${before.commit} ` +
          `to term ${after.term} commit ${after.commit}`,
      );
    }
  }

  #fail(check: SafetyCheck, details: string): never {
    throw new SafetyViolation({ check, seed: this.#seed, timeMs: this.#nowMs(), details });
  }
}

function sameEntry(a: EntryFingerprint, b: EntryFingerprint): boolean {
  return a.term === b.term && a.type === b.type && sameBytes(a.data, b.data);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(entry: EntryFingerprint & { index?: number }): string {
  const at = entry.index === undefined ? '' : `@${entry.index}`;
  return `entry${at}(term ${entry.term}, type ${entry.type}, ${entry.data.byteLength}B ${preview(entry.data)})`;
}

function preview(data: Uint8Array): string {
  const text = new TextDecoder().decode(data.subarray(0, 48));
  return JSON.stringify(text);
}
