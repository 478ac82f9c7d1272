import type { Entry, HardState, SnapshotMetadata } from '@conclave/raft';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedCrashError } from '../sim-disk.js';
import { entries, type GroupSummary, openWal, simDisk, snapshot, summarizeWal } from '../testing/fixtures.js';
import type { GroupWrite, Wal } from './wal.js';

/**
 * Random batches, snapshots and crashes (at any sync point, with torn writes and flipped bits)
 * on SimDisk. After every recovery each group must equal the model of what was acknowledged,
 * or of that plus the one operation a crash interrupted: nothing synced is lost, nothing
 * unsynced appears half-applied.
 */

interface ModelGroup {
  hardState: HardState;
  snapshot: SnapshotMetadata;
  offset: number;
  offsetTerm: number;
  log: Entry[];
  /** The group's current term, so entries and hard states look like Raft's. */
  term: number;
}

type Model = Map<number, ModelGroup>;

const emptyGroup = (): ModelGroup => ({
  hardState: { term: 0, vote: null, commit: 0 },
  snapshot: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  offset: 0,
  offsetTerm: 0,
  log: [],
  term: 1,
});

const clone = (model: Model): Model =>
  new Map([...model].map(([id, g]) => [id, { ...g, log: g.log.slice() }]));
const last = (g: ModelGroup): number => g.offset + g.log.length;
const termAt = (g: ModelGroup, index: number): number =>
  index === g.offset ? g.offsetTerm : (g.log[index - g.offset - 1]?.term ?? -1);

function groupOf(model: Model, id: number): ModelGroup {
  let g = model.get(id);
  if (g === undefined) {
    g = emptyGroup();
    model.set(id, g);
  }
  return g;
}

function summarizeModel(model: Model): Map<number, GroupSummary> {
  const out = new Map<number, GroupSummary>();
  for (const [id, g] of [...model].sort((a, b) => a[0] - b[0])) {
    out.set(id, {
      hardState: g.hardState,
      snapshot: g.snapshot,
      compactedThrough: { index: g.offset, term: g.offsetTerm },
      entries: g.log.map((e) => ({ index: e.index, term: e.term, data: [...e.data] })),
    });
  }
  return normalize(out);
}

/** A group nothing durable was written for is the same as an absent one. */
function normalize(groups: Map<number, GroupSummary>): Map<number, GroupSummary> {
  const pristine = JSON.stringify({
    hardState: emptyGroup().hardState,
    snapshot: emptyGroup().snapshot,
    compactedThrough: { index: 0, term: 0 },
    entries: [],
  });
  return new Map([...groups].filter(([, s]) => JSON.stringify(s) !== pristine));
}

const itemArb = fc.record({
  group: fc.nat(4),
  back: fc.nat(3),
  count: fc.nat(4),
  bump: fc.boolean(),
  dataBytes: fc.nat(120),
  hardState: fc.boolean(),
  commitPick: fc.nat(1000),
  install: fc.option(fc.integer({ min: 1, max: 5 }), { freq: 8 }),
});

const opArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      items: fc.array(itemArb, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('snapshot' as const),
      group: fc.nat(4),
      pick: fc.nat(1000),
      lag: fc.nat(5),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      afterSyncs: fc.nat(3),
      tornWriteRate: fc.constantFrom(0.5, 0.9, 1),
      bitFlipRate: fc.constantFrom(0, 0.3, 1),
    }),
  },
);

type Op =
  fc.Arbitrary<typeof opArb extends fc.Arbitrary<infer T> ? T : never> extends fc.Arbitrary<infer U>
    ? U
    : never;

/** Turn a generated operation into concrete calls, applying it to `next` (a clone of the model). */
function materialize(next: Model, op: Op): ((wal: Wal) => void) | null {
  if (op.kind === 'batch') {
    const writes: GroupWrite[] = op.items.map((item) => {
      const g = groupOf(next, item.group);
      if (item.bump) g.term++;
      let snap: GroupWrite['snapshot'] = null;
      if (item.install !== null) {
        const index = Math.max(last(g), g.hardState.commit) + item.install;
        snap = snapshot({ index, term: g.term });
        g.snapshot = snap.metadata;
        g.offset = index;
        g.offsetTerm = g.term;
        g.log = [];
        g.hardState = { ...g.hardState, commit: index };
      }
      // Raft never rewrites committed entries.
      const floor = Math.max(g.hardState.commit, g.offset) + 1;
      const start = Math.max(floor, last(g) + 1 - item.back);
      const written =
        item.count === 0
          ? []
          : entries({ from: start, count: item.count, term: g.term, dataBytes: item.dataBytes });
      if (written.length > 0) g.log = g.log.slice(0, start - g.offset - 1).concat(written);
      let hardState: HardState | null = null;
      if (item.hardState || snap !== null) {
        const commit = g.hardState.commit + (item.commitPick % (last(g) - g.hardState.commit + 1));
        hardState = {
          term: g.term,
          vote: item.commitPick % 3 === 0 ? null : `n${item.commitPick % 5}`,
          commit,
        };
        g.hardState = hardState;
      }
      return { groupId: item.group, entries: written, hardState, snapshot: snap };
    });
    return (wal) => wal.appendBatch(writes);
  }
  if (op.kind === 'snapshot') {
    const g = next.get(op.group);
    if (g === undefined) return null;
    const lo = Math.max(g.offset, g.snapshot.index);
    const hi = g.hardState.commit;
    if (hi < lo || hi === 0) return null;
    const index = lo + (op.pick % (hi - lo + 1));
    const snap = snapshot({ index, term: termAt(g, index) });
    const through = Math.max(g.offset, index - op.lag);
    if (index >= g.snapshot.index) g.snapshot = snap.metadata;
    if (through > g.offset) {
      g.offsetTerm = termAt(g, through);
      g.log = g.log.slice(through - g.offset);
      g.offset = through;
    }
    return (wal) => wal.recordSnapshot({ groupId: op.group, snapshot: snap, compactThroughIndex: through });
  }
  return null;
}

describe('Wal under random batches and crashes (property)', () => {
  it('recovers exactly the acknowledged state, or that plus the interrupted operation', () => {
    const limits = { segmentBytesMax: 1024 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 80 }), fc.nat(), (ops, seed) => {
        const disk = simDisk(seed);
        let wal = openWal(disk, limits);
        let model: Model = new Map();
        let pendingCrash: { tornWriteRate: number; bitFlipRate: number } | null = null;
        const recover = (
          candidates: Model[],
          crash: { tornWriteRate: number; bitFlipRate: number },
        ): void => {
          disk.crash(crash);
          wal = openWal(disk, limits);
          const recovered = normalize(summarizeWal(wal));
          const match = candidates.find((c) => {
            try {
              expect(recovered).toEqual(summarizeModel(c));
              return true;
            } catch {
              return false;
            }
          });
          if (match === undefined) expect(recovered).toEqual(summarizeModel(candidates[0] as Model));
          model = clone(match ?? model);
        };
        for (const op of ops) {
          if (op.kind === 'crash') {
            if (pendingCrash === null) {
              disk.scheduleCrash({ afterSyncs: op.afterSyncs });
              pendingCrash = { tornWriteRate: op.tornWriteRate, bitFlipRate: op.bitFlipRate };
            }
            continue;
          }
          const next = clone(model);
          const run = materialize(next, op);
          if (run === null) continue;
          try {
            run(wal);
            model = next;
          } catch (error) {
            if (!(error instanceof SimulatedCrashError) || pendingCrash === null) throw error;
            recover([model, next], pendingCrash);
            pendingCrash = null;
          }
        }
        // A final power loss: everything acknowledged is synced, so nothing may change.
        recover([model], pendingCrash ?? { tornWriteRate: 1, bitFlipRate: 1 });
      }),
      { numRuns: 300 },
    );
  });
});
