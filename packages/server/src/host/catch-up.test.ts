/**
 * The follower catch-up case of the log truncation policy (issue 5; etcd #4055, Consul
 * #9609), in-process and deterministic: three hosts on a TickedNetwork, virtual ticks, a
 * steady write rate on the leader, and a follower wiped and joined again (removed, then added
 * back as a learner with an empty log, the supported way). Its snapshot chunks are held on
 * the wire, so each transfer lasts a known number of ticks while the writes go on.
 *
 * Why a loop is possible here: nothing stops the leader compacting past a snapshot it is
 * sending. It streams the snapshot it held when the transfer started (raft
 * roles/leader.ts:167 startSnapshot), while each snapshot it takes meanwhile compacts its log
 * to that snapshot's index minus the trailing entries/bytes (server host/group.ts:335, :376
 * compactionPoint). When the follower acknowledges the installed snapshot S, endSnapshot
 * (leader.ts:142) replicates only if the leader's first log index is at most S + 1;
 * otherwise it probes, sendAppend (leader.ts:79) finds S + 1 compacted and startSnapshot
 * sends the newest snapshot: again, for as long as each transfer sees such a compaction.
 *
 * That needs two things during one transfer: the leader takes a snapshot (every
 * snapshotThresholdEntries entries), and that snapshot is more than the trailing entries
 * (or trailing bytes) past S. With w entries committed per transfer, threshold t and
 * trailing logs r: the loop is endless once w > t + r; one install is certain once r > w + t
 * (the snapshot sent may already be up to t behind the leader); and t >= 2w bounds a
 * catch-up at two installs whatever r (a lost transfer moves the next snapshot's phase back
 * by t - w). The cases below pin this down with the same load and transfer (w = 288, t = 64
 * unless named): ample trailing logs (one install), too few trailing entries or bytes
 * (snapshot after snapshot, never caught up), and too few trailing entries with t >= 2w (at
 * most two installs: the regime of the process-level catch-up.e2e.test.ts, which is why its
 * own negative control passes). Measured sweep (trailing entries at t = 64): 250 and below
 * loop, 280 and above install once; at r = 0, t = 300 took 13 installs, t = 400 one.
 */
import { type ConfChange, EntryType, entrySizeBytes, MemoryStorage } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { defaultGroupLimits, type GroupLimits } from './group.js';
import { MultiRaftHost } from './host.js';
import { noopGroupObserver } from './observer.js';
import { MemoryDurableLog } from './testing/in-memory.js';
import { encodeKvCommand, type KvResult, KvStateMachine } from './testing/kv-state-machine.js';
import { TickedNetwork } from './testing/ticked-network.js';

const ids = ['s1', 's2', 's3'];
/** The state: every key written once at load, then overwritten by the steady writes. */
const keysCount = 512;
const valueBytes = 256;
/** Writes proposed per tick while loading the state (any rate will do, it is not measured). */
const loadWritesPerTick = 64;
/** The steady write rate on the leader during the catch-up, entries per tick. */
const writesPerTick = 8;
/** Raft's messageBytesMax, so also the snapshot chunk size: a ~150 KB state is ~37 chunks. */
const chunkBytes = 4 * 1024;
/**
 * Each snapshot chunk to the rejoined server spends this long on the wire; chunks go one at a
 * time (the next once the previous is acknowledged, which comes back within the tick), so a
 * transfer lasts ~ chunks x this ticks (37 measured). Kept under the leader's resend timeout
 * (2 heartbeats), so no chunk is sent twice.
 */
const chunkDelayTicks = 1;
/** Often enough that the leader snapshots several times during one transfer. */
const frequentSnapshotEntries = 64;
/** Trailing logs far below one transfer's writes. */
const tinyTrailingEntries = 16;
/** Ticks the rejoined server is given to catch up; a transfer takes ~40. */
const catchUpTicksMax = 600;
/** A settled tick is a few round trips; more rounds than this is a livelock in the fixture. */
const settleRoundsMax = 64;
const turnsPerRoundMax = 64;
const electionTicksMax = 200;
const setupTicksMax = 400;
/** In the loop case, at least this many installs within catchUpTicksMax. */
const loopInstallsMin = 5;

const entryBytes = entrySizeBytes({
  index: 1,
  term: 1,
  type: EntryType.Normal,
  data: encodeKvCommand({ op: 'put', key: 'k000', value: new Uint8Array(valueBytes) }),
});

interface Server {
  readonly id: string;
  readonly host: MultiRaftHost<KvResult>;
  readonly machine: KvStateMachine;
  /** This server's proposals applied and failed, as its observer saw them. */
  readonly writes: { applied: number; failed: number };
}

/** One snapshot installed by the rejoined server, and what the leader did during its transfer. */
interface Install {
  readonly index: number;
  /** Ticks from the leader's first chunk of this snapshot to its install. */
  readonly transferTicks: number;
  /** Entries the leader committed during that transfer. */
  readonly entriesCommitted: number;
  /** The leader's first log index at the install: above index + 1, the log cannot continue it. */
  readonly leaderFirstIndex: number;
}

interface Outcome {
  readonly installs: readonly Install[];
  /** Ticks after the rejoin at which its applied index reached the leader's commit, or null. */
  readonly caughtUpTicks: number | null;
  /** Writes the leader refused or failed during the catch-up: none expected. */
  readonly writesFailed: number;
  /** Writes applied on the leader during the catch-up: the load really was sustained. */
  readonly writesApplied: number;
  /** Ticks the catch-up phase ran (to caught up, or catchUpTicksMax). */
  readonly ticks: number;
}

/**
 * Elect, load the state, let the leader snapshot; then wipe a follower, remove it, join it
 * again as an empty learner and tick until it catches up or catchUpTicksMax pass.
 */
function catchUp(limits: Partial<GroupLimits>): Outcome {
  const groupLimits: Partial<GroupLimits> = { snapshotIntervalTicks: 0, ...limits };
  const net = new TickedNetwork();
  const start = (
    id: string,
    seed: number,
    options: { empty: boolean; onInstall?: (index: number) => void },
  ) => {
    // Counted by the observer, which the host calls synchronously: a proposal's promise
    // settles in a microtask, and this test never yields to one until it is over.
    const writes = { applied: 0, failed: 0 };
    const log = new MemoryDurableLog({ groupCount: 1, voters: ids });
    // A wiped server knows no membership: it takes a snapshot before any entry.
    if (options.empty) log.storages.set(0, new MemoryStorage());
    const machine = new KvStateMachine();
    const onInstall = options.onInstall;
    const host = new MultiRaftHost<KvResult>({
      nodeId: id,
      groupCount: 1,
      log,
      transport: net.transportFor(id),
      stateMachine: () => machine,
      raft: { messageBytesMax: chunkBytes },
      limits: groupLimits,
      seed,
      balanceIntervalTicks: 0,
      observer: {
        group: () => ({
          ...noopGroupObserver,
          proposalApplied: () => writes.applied++,
          proposalRefused: () => writes.failed++,
          snapshotInstalled: (event) => onInstall?.(event.index),
        }),
        persisted: () => {},
      },
    });
    net.register(id, (envelopes) => host.receive(envelopes));
    return { id, host, machine, writes };
  };
  let live: Server[] = ids.map((id, i) => start(id, i + 1, { empty: false }));

  const settle = () => {
    for (let round = 0; round < settleRoundsMax; round++) {
      for (const server of live) server.host.runTurns({ turnsMax: turnsPerRoundMax });
      const delivered = net.deliverDue();
      if (delivered === 0 && live.every((s) => !s.host.group(0).raw.hasReady())) return;
    }
    throw new Error(`the network did not settle within ${settleRoundsMax} rounds at tick ${net.tick}`);
  };
  let sequence = 0;
  const write = (leader: Server, count: number) => {
    for (let i = 0; i < count; i++) {
      const n = sequence++;
      const key = `k${String(n % keysCount).padStart(3, '0')}`;
      const value = new Uint8Array(valueBytes).fill(n & 0xff);
      // Failures are counted by the observer (see start); this only keeps them handled.
      leader.host.propose({ groupId: 0, data: encodeKvCommand({ op: 'put', key, value }) }).catch(() => {});
    }
  };
  const tick = (leader: Server | null, writes: number) => {
    net.advanceTick();
    for (const server of live) server.host.tick();
    if (leader !== null) write(leader, writes);
    settle();
  };
  const status = (server: Server) => server.host.group(0).raw.status();
  const confChange = (leader: Server, change: ConfChange) => {
    const proposed = leader.host.proposeConfChange({ groupId: 0, change });
    if (!proposed.ok) throw proposed.error;
    return proposed.index;
  };

  try {
    let leader: Server | undefined;
    for (let t = 0; t < electionTicksMax && leader === undefined; t++) {
      tick(null, 0);
      leader = live.find((s) => status(s).role === 'leader');
    }
    if (leader === undefined) throw new Error(`no leader within ${electionTicksMax} ticks`);
    const theLeader = leader;
    const steady = (writes: number, done: () => boolean, what: string) => {
      for (let t = 0; t < setupTicksMax; t++) {
        if (done()) return;
        tick(theLeader, writes);
        // The synchronous network never delays a heartbeat: a leadership change is a fixture bug.
        expect(status(theLeader).role).toBe('leader');
      }
      throw new Error(`${what}: not within ${setupTicksMax} ticks`);
    };

    // Load the state until the leader has snapshotted it, so the joiner needs a snapshot.
    steady(
      loadWritesPerTick,
      () => theLeader.machine.size === keysCount && theLeader.host.group(0).lastSnapshot.index > 0,
      'the state loaded and snapshotted',
    );

    // Wipe a follower: down, stopped, removed from the group.
    const victim = live.find((s) => s !== theLeader);
    if (victim === undefined) throw new Error('no follower');
    net.setDown(victim.id, true);
    victim.host.stop();
    live = live.filter((s) => s !== victim);
    const removedAt = confChange(theLeader, { type: 'removeNode', nodeId: victim.id });
    steady(writesPerTick, () => theLeader.host.group(0).applied >= removedAt, 'the removal applied');

    // Join it again, empty, with slow snapshot transfers; the steady writes go on.
    const installs: Install[] = [];
    const transferStarts = new Map<number, { tick: number; commit: number }>();
    net.onSend = ({ to, envelope: { message } }) => {
      if (to !== victim.id || message.type !== 'snap' || message.offset !== 0) return;
      const { index } = message.metadata;
      // A chunk 0 sent again (a restarted transfer) does not restart the clock.
      if (!transferStarts.has(index))
        transferStarts.set(index, { tick: net.tick, commit: status(theLeader).commit });
    };
    const rejoined = start(victim.id, ids.length + 1, {
      empty: true,
      onInstall: (index) => {
        const started = transferStarts.get(index);
        if (started === undefined) throw new Error(`installed snapshot ${index} that was never sent`);
        installs.push({
          index,
          transferTicks: net.tick - started.tick,
          entriesCommitted: status(theLeader).commit - started.commit,
          leaderFirstIndex: theLeader.host.group(0).logFirstIndex,
        });
      },
    });
    live.push(rejoined);
    net.setDown(victim.id, false);
    net.holdSnapshotChunks({ to: victim.id, ticks: chunkDelayTicks });
    confChange(theLeader, { type: 'addLearner', nodeId: victim.id });
    const rejoinTick = net.tick;
    const writesBefore = { ...theLeader.writes };
    let caughtUpTicks: number | null = null;
    for (let t = 0; t < catchUpTicksMax && caughtUpTicks === null; t++) {
      tick(theLeader, writesPerTick);
      expect(status(theLeader).role).toBe('leader');
      const applied = rejoined.host.group(0).applied;
      if (installs.length > 0 && applied >= status(theLeader).commit) caughtUpTicks = net.tick - rejoinTick;
    }
    if (caughtUpTicks !== null) {
      // Caught up means the same state, not just the same index.
      for (let k = 0; k < keysCount; k++) {
        const key = `k${String(k).padStart(3, '0')}`;
        // Compared as plain arrays: the decoder hands out Buffers, the leader's writes are Uint8Arrays.
        const [mine, theirs] = [rejoined, theLeader].map((s) => s.machine.get(key));
        expect(mine?.modifyIndex).toBe(theirs?.modifyIndex);
        expect([...(mine?.value ?? [])]).toEqual([...(theirs?.value ?? [])]);
      }
    }
    return {
      installs,
      caughtUpTicks,
      writesFailed: theLeader.writes.failed - writesBefore.failed,
      writesApplied: theLeader.writes.applied - writesBefore.applied,
      ticks: net.tick - rejoinTick,
    };
  } finally {
    for (const server of live) server.host.stop();
  }
}

/** The steady writes went on through the catch-up: all but the last tick's applied, none failed. */
function expectSustained(outcome: Outcome): void {
  expect(outcome.writesFailed).toBe(0);
  expect(outcome.writesApplied).toBeGreaterThanOrEqual((outcome.ticks - 1) * writesPerTick);
}

/** Print what a case measured, so a failure (or a tuning) shows the numbers behind it. */
function report(name: string, outcome: Outcome): void {
  const transfers = outcome.installs.map((i) => `${i.entriesCommitted}/${i.transferTicks}t`).join(' ');
  process.stdout.write(
    `catch-up [${name}]: ${outcome.installs.length} install(s), caught up after ` +
      `${outcome.caughtUpTicks ?? 'never'} ticks; entries committed/ticks per transfer: ${transfers}\n`,
  );
}

describe('a follower wiped and joined again under a steady write rate', () => {
  it('catches up from one snapshot when the trailing logs (the host default) exceed what a transfer commits, though the leader snapshots several times meanwhile', () => {
    const trailing = defaultGroupLimits.snapshotTrailingEntries;
    const outcome = catchUp({ snapshotThresholdEntries: frequentSnapshotEntries });
    report('default trailing', outcome);
    expect(outcome.caughtUpTicks).not.toBeNull();
    expect(outcome.installs).toHaveLength(1);
    const [install] = outcome.installs;
    if (install === undefined) throw new Error('no install');
    // The scenario is the dangerous one: the leader took snapshots during the transfer...
    expect(install.entriesCommitted).toBeGreaterThan(2 * frequentSnapshotEntries);
    // ...but kept S + 1 because one transfer's writes stay within the trailing entries.
    expect(install.entriesCommitted + frequentSnapshotEntries).toBeLessThan(trailing);
    expect(install.leaderFirstIndex).toBeLessThanOrEqual(install.index + 1);
    expectSustained(outcome);
  });

  it('installs snapshot after snapshot, never catching up, when the trailing entries are fewer than a transfer commits (the negative control)', () => {
    const outcome = catchUp({
      snapshotThresholdEntries: frequentSnapshotEntries,
      snapshotTrailingEntries: tinyTrailingEntries,
    });
    report('tiny trailing entries', outcome);
    expectSustained(outcome);
    expect(outcome.caughtUpTicks).toBeNull();
    expect(outcome.installs.length).toBeGreaterThanOrEqual(loopInstallsMin);
    for (const install of outcome.installs) {
      // Each time, the leader had compacted past the installed snapshot during its transfer...
      expect(install.leaderFirstIndex).toBeGreaterThan(install.index + 1);
      expect(install.entriesCommitted).toBeGreaterThan(tinyTrailingEntries + frequentSnapshotEntries);
    }
    // ...so it sent its newest snapshot again: each install is a later one.
    const indexes = outcome.installs.map((i) => i.index);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(new Set(indexes).size).toBe(indexes.length);
  });

  it('loops the same way when ample trailing entries hold fewer bytes than a transfer writes (the byte bound)', () => {
    const outcome = catchUp({
      snapshotThresholdEntries: frequentSnapshotEntries,
      snapshotTrailingBytesMax: tinyTrailingEntries * entryBytes,
    });
    report('tiny trailing bytes', outcome);
    expectSustained(outcome);
    expect(outcome.caughtUpTicks).toBeNull();
    expect(outcome.installs.length).toBeGreaterThanOrEqual(loopInstallsMin);
    for (const install of outcome.installs)
      expect(install.leaderFirstIndex).toBeGreaterThan(install.index + 1);
  });

  it('installs at most two snapshots with tiny trailing logs when the snapshot threshold is at least twice what a transfer commits: the loop needs a snapshot taken during each transfer', () => {
    // At least twice one transfer's writes (288 entries): a transfer lost to a snapshot taken
    // during it leaves the next one at least t - w entries before the following snapshot.
    const rareSnapshotEntries = 1024;
    const outcome = catchUp({
      snapshotThresholdEntries: rareSnapshotEntries,
      snapshotTrailingEntries: tinyTrailingEntries,
    });
    report('tiny trailing, rare snapshots', outcome);
    expect(outcome.caughtUpTicks).not.toBeNull();
    expect(outcome.installs.length).toBeGreaterThanOrEqual(1);
    expect(outcome.installs.length).toBeLessThanOrEqual(2);
    for (const install of outcome.installs)
      expect(install.entriesCommitted).toBeLessThan(rareSnapshotEntries);
    expectSustained(outcome);
  });
});
