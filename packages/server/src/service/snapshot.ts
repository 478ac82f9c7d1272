import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { assert } from '@conclave/raft';
import { type ArchiveMeta, archiveStream, type GroupSource, readArchiveStream } from '../archive/index.js';
import { ConclaveError } from '../errors.js';
import { type ConclaveFsm, type FsmCommand, type FsmResult, PartsDigest } from '../fsm/index.js';
import { restoreBatchBytesMax, restoreBatchPartsMax } from '../fsm/restore-wire.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { expectApply, expectReply, type GroupCall, type GroupCaller, type GroupReply } from './calls.js';
import { idleGuarded } from './idle-guard.js';
import { defaultCursorLimits } from './snapshot-cursors.js';

export interface SnapshotLimits {
  /**
   * Largest archive a restore accepts, compressed (counted by the route) and unpacked
   * (counted by the reader) alike (bytes). Memory does not grow with it: a restore holds
   * two batches of parts at most (one in flight, one filling).
   */
  readonly archiveBytesMax: number;
  /** Part bytes a save asks for per cursor read: what this server holds per save (bytes). */
  readonly readBytes: number;
  /** How long aborting a failed restore's staging may take, per group, all in parallel (ms). */
  readonly abortWaitMs: number;
  /**
   * A restore whose archive sends no byte for this long, while the restore waits for one,
   * fails (and aborts what it staged) rather than pin its staging on every server (ms).
   * Must stay below the reaper's restoreStagingIdleMs, so a live restore keeps its staging.
   */
  readonly bodyIdleMs: number;
  /**
   * Part bytes a restore gathers into one restore-batch proposal at most (bytes; at most the
   * wire's restoreBatchBytesMax). With one batch in flight and one filling, a restore holds
   * about twice this in parts.
   */
  readonly restoreBatchBytesMax: number;
  /** Parts one restore-batch proposal carries at most (at most the wire's restoreBatchPartsMax; 1: no batching). */
  readonly restoreBatchPartsMax: number;
}

export const defaultSnapshotLimits: SnapshotLimits = {
  archiveBytesMax: 64 * 1024 * 1024 * 1024,
  readBytes: defaultCursorLimits.readBytesMax,
  abortWaitMs: 10_000,
  bodyIdleMs: 60_000,
  restoreBatchBytesMax,
  restoreBatchPartsMax,
};

/**
 * Restore proposals in flight at once, per restore: one. A proposal may be forwarded over
 * HTTP to a remote leader, so two at once could apply out of order; the next is sent only
 * once the last one's result is known, and the archive is read meanwhile (RestorePipeline).
 */
export const restoreProposalsInFlightMax = 1;

/** What a restore replaced: each group's index after its commit. */
export interface RestoreOutcome {
  readonly groups: readonly { groupId: number; index: number; keys: number }[];
}

/** The router: group calls go to the leader, cursor calls to the server holding the cursor. */
export interface SnapshotCaller extends GroupCaller {
  callServer(options: {
    nodeId: string;
    groupId: GroupId;
    call: GroupCall;
    signal?: AbortSignal | undefined;
  }): Promise<GroupReply>;
}

/** A cursor this server opened on `nodeId` for a save. */
interface OpenCursor {
  readonly nodeId: string;
  readonly groupId: GroupId;
  readonly cursorId: string;
  open: boolean;
}

/**
 * User snapshots of every group. `save` streams an archive, pulling each group's parts from
 * a cursor on its leader (or on this server with `stale`) only as fast as the archive is
 * read. `restore` streams an archive into Raft in batches of parts, one in flight while the
 * next fills, and commits the groups only once the whole archive is verified, so memory is
 * bounded (about two batches) whatever the data's size.
 */
export class SnapshotService {
  private readonly limits: SnapshotLimits;
  private restoring = false;
  /** The restoreIds the restore running here staged, until it committed or aborted them. */
  private readonly ownStagings = new Set<string>();
  /** Part bytes read from cursors and not yet taken by an archive: at most one read per save. */
  private heldBytes = 0;
  private heldBytesPeakValue = 0;

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      caller: SnapshotCaller;
      fsm: (groupId: GroupId) => ConclaveFsm;
      limits?: Partial<SnapshotLimits>;
    },
  ) {
    this.limits = { ...defaultSnapshotLimits, ...options.limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value <= 0) {
        throw new ConclaveError({ code: 'CONFIG_INVALID', message: `${name} must be a positive integer` });
      }
    }
    // Past the wire's bounds, the FSM's encoder would assert on the batch.
    if (this.limits.restoreBatchBytesMax > restoreBatchBytesMax) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `restoreBatchBytesMax must be at most ${restoreBatchBytesMax}`,
      });
    }
    if (this.limits.restoreBatchPartsMax > restoreBatchPartsMax) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `restoreBatchPartsMax must be at most ${restoreBatchPartsMax}`,
      });
    }
  }

  get archiveBytesMax(): number {
    return this.limits.archiveBytesMax;
  }

  get bodyIdleMs(): number {
    return this.limits.bodyIdleMs;
  }

  /** Whether the restore running on this server staged `restoreId` (the reaper spares it). */
  stagesOwn(restoreId: string): boolean {
    return this.ownStagings.has(restoreId);
  }

  /** The most part bytes saves held at once on this server since it started (bytes). */
  get heldBytesPeak(): number {
    return this.heldBytesPeakValue;
  }

  /**
   * The sum of the groups' applied indexes on this server now: a lower bound of the
   * archive's (a leader may be further on); meta.json has each group's exact index.
   */
  appliedIndexSum(): number {
    let sum = 0;
    for (let groupId = 0; groupId < this.options.host.groupCount; groupId++) {
      sum += this.options.fsm(groupId).appliedIndex();
    }
    return sum;
  }

  /** The gzipped archive, one group at a time; a failed open or read errors the stream. */
  save(options: { clusterId: string; stale: boolean; nowMs?: number }): Readable {
    return archiveStream({
      clusterId: options.clusterId,
      createdAtMs: options.nowMs ?? Date.now(),
      groups: this.sources(options.stale),
    });
  }

  private async *sources(stale: boolean): AsyncGenerator<GroupSource> {
    const { caller, host } = this.options;
    for (let groupId = 0; groupId < host.groupCount; groupId++) {
      const call: GroupCall = { kind: 'snapshot-open', stale };
      const opened = expectReply(await caller.call({ groupId, call }), 'snapshot-open');
      const cursor: OpenCursor = { nodeId: opened.nodeId, groupId, cursorId: opened.cursorId, open: true };
      try {
        yield {
          groupId,
          index: opened.index,
          term: opened.term,
          voters: opened.voters,
          learners: opened.learners,
          keys: opened.keys,
          parts: this.parts(cursor),
        };
      } finally {
        // The archive took every part (the cursor closed itself) or gave up: then release
        // the view now rather than when it goes idle.
        if (cursor.open) this.closeCursor(cursor);
      }
    }
  }

  /** One read's parts at a time: the next read is sent once the archive took the last. */
  private async *parts(cursor: OpenCursor): AsyncGenerator<Uint8Array> {
    const { nodeId, groupId, cursorId } = cursor;
    const call: GroupCall = { kind: 'snapshot-read', cursorId, bytesMax: this.limits.readBytes };
    for (;;) {
      const reply = expectReply(
        await this.options.caller.callServer({ nodeId, groupId, call }),
        'snapshot-read',
      );
      assert(reply.done || reply.parts.length > 0, 'a cursor read gives a part while any is left');
      if (reply.done) cursor.open = false;
      const parts = [...reply.parts];
      let held = parts.reduce((sum, part) => sum + part.byteLength, 0);
      this.hold(held);
      try {
        for (let part = parts.shift(); part !== undefined; part = parts.shift()) {
          yield part;
          // The archive asked for the next one: it is done with this one.
          this.hold(-part.byteLength);
          held -= part.byteLength;
        }
      } finally {
        this.hold(-held);
      }
      if (reply.done) return;
    }
  }

  private hold(bytes: number): void {
    this.heldBytes += bytes;
    this.heldBytesPeakValue = Math.max(this.heldBytesPeakValue, this.heldBytes);
  }

  /** Best effort and not awaited: a cursor left open is closed by its server when idle. */
  private closeCursor(cursor: OpenCursor): void {
    cursor.open = false;
    const { nodeId, groupId, cursorId } = cursor;
    this.options.caller
      .callServer({ nodeId, groupId, call: { kind: 'snapshot-close', cursorId } })
      .catch(() => undefined);
  }

  /**
   * Replaces every group's state with the archive's, streamed: consecutive parts of a group
   * are gathered into restore-batch proposals (every server stages them), one batch in
   * flight while the archive is read on into the next, and each group is committed only
   * once the whole archive has been verified, so a corrupt or mismatched archive changes
   * nothing: its staging is aborted. Groups are committed one after another, so a failure
   * part-way through the commits (RESTORE_FAILED, NO_LEADER, TIMEOUT) leaves the earlier
   * groups restored. One restore at a time per server.
   */
  async restore(gzipped: Readable): Promise<RestoreOutcome & { meta: ArchiveMeta }> {
    if (this.restoring) {
      throw new ConclaveError({
        code: 'RESTORE_IN_PROGRESS',
        message: 'a restore is already running on this server',
      });
    }
    this.restoring = true;
    const body = idleGuarded({
      source: gzipped,
      idleMs: this.limits.bodyIdleMs,
      idleError: () =>
        new ConclaveError({
          code: 'SNAPSHOT_ARCHIVE_INVALID',
          message: `the archive stopped arriving: no byte for ${this.limits.bodyIdleMs} ms (bodyIdleMs); nothing was restored, send it again`,
        }),
    });
    try {
      return await this.restoreStream(body);
    } catch (error) {
      // As reading it directly would: a failed restore releases its source.
      gzipped.destroy();
      throw error;
    } finally {
      this.restoring = false;
      this.ownStagings.clear();
    }
  }

  private async restoreStream(gzipped: Readable): Promise<RestoreOutcome & { meta: ArchiveMeta }> {
    /** The groups begun and not committed, with their restoreIds: aborted on failure. */
    const staged = new Map<GroupId, string>();
    /** The digest of the parts proposed to each group, which every server checks at its commit. */
    const digests = new Map<GroupId, PartsDigest>();
    const proposals = new RestorePipeline((groupId, command) => this.step(groupId, command));
    /** The parts read and not yet proposed: consecutive parts of one group, within the batch bounds. */
    let batch: {
      groupId: GroupId;
      restoreId: string;
      seq: number;
      parts: Uint8Array[];
      bytes: number;
    } | null = null;
    const flush = async (): Promise<void> => {
      if (batch === null) return;
      const { groupId, restoreId, seq, parts } = batch;
      batch = null;
      await proposals.send(groupId, { type: 'restore-batch', restoreId, seq, parts });
    };
    try {
      const meta = await readArchiveStream(gzipped, {
        archiveBytesMax: this.limits.archiveBytesMax,
        groupCount: this.options.host.groupCount,
        onPart: async ({ groupId, seq, data }) => {
          // A refused proposal ends the read now rather than at the next send.
          proposals.throwIfFailed();
          const { restoreBatchBytesMax: bytesMax, restoreBatchPartsMax: partsMax } = this.limits;
          // A batch never mixes groups, and never passes its bounds: send it and start the next.
          if (
            batch !== null &&
            (batch.groupId !== groupId ||
              batch.parts.length >= partsMax ||
              batch.bytes + data.byteLength > bytesMax)
          ) {
            await flush();
          }
          let restoreId = staged.get(groupId);
          if (restoreId === undefined) {
            restoreId = randomUUID();
            staged.set(groupId, restoreId);
            this.ownStagings.add(restoreId);
            digests.set(groupId, PartsDigest.start());
            await proposals.send(groupId, { type: 'restore-begin', restoreId });
          }
          const digest = digests.get(groupId);
          assert(digest !== undefined, 'a group begun has its digest');
          digest.update(data);
          batch ??= { groupId, restoreId, seq, parts: [], bytes: 0 };
          // The archive reader hands a group's parts in sequence, so a batch's seqs run on.
          assert(batch.seq + batch.parts.length === seq, 'a batch holds consecutive parts');
          batch.parts.push(data);
          batch.bytes += data.byteLength;
        },
      });
      await flush();
      await proposals.settled();
      const groups: { groupId: number; index: number; keys: number }[] = [];
      for (const group of meta.groups) {
        const { groupId, parts, bytes } = group;
        const restoreId = staged.get(groupId);
        const digest = digests.get(groupId);
        if (restoreId === undefined || digest === undefined) {
          throw new ConclaveError({
            code: 'SNAPSHOT_ARCHIVE_INVALID',
            message: `the archive holds no part of group ${groupId}`,
          });
        }
        const commit = { restoreId, parts, bytes, digest: digest.hex() };
        const index = await this.step(groupId, { type: 'restore-commit', ...commit });
        staged.delete(groupId);
        groups.push({ groupId, index, keys: group.keys });
      }
      return { meta, groups };
    } catch (error) {
      // Let the proposal in flight land first, so the aborts come after it (its own timeout bounds it).
      await proposals.quiet();
      await this.abortStaged(staged);
      throw error;
    }
  }

  /**
   * Drops every staged group on every server, best effort and bounded: an abort that fails
   * leaves staging that the next restore-begin of that group replaces.
   */
  private async abortStaged(staged: ReadonlyMap<GroupId, string>): Promise<void> {
    await Promise.allSettled(
      [...staged].map(([groupId, restoreId]) =>
        this.options.caller.call({
          groupId,
          call: { kind: 'apply', command: { type: 'restore-abort', restoreId } },
          signal: AbortSignal.timeout(this.limits.abortWaitMs),
        }),
      ),
    );
  }

  private async step(groupId: GroupId, command: FsmCommand): Promise<number> {
    const reply = expectApply(await this.options.caller.call({ groupId, call: { kind: 'apply', command } }));
    const { result } = reply;
    if (result.type !== 'restore') throw new Error(`expected a restore result, got ${result.type}`);
    if (!result.ok) {
      throw new ConclaveError({
        code: 'RESTORE_FAILED',
        message: `group ${groupId}: ${result.error ?? 'the restore was refused'}`,
      });
    }
    return reply.index;
  }
}

/**
 * A restore's proposals in order, at most restoreProposalsInFlightMax (one) at a time:
 * `send` waits for the one in flight to settle, then starts the next without awaiting it,
 * so the caller reads on while it goes through Raft. The first failure is kept and thrown
 * by every later call, so nothing is sent after a refusal.
 */
class RestorePipeline {
  private inFlight: Promise<void> | null = null;
  private failure: { readonly error: unknown } | null = null;

  constructor(private readonly propose: (groupId: GroupId, command: FsmCommand) => Promise<number>) {}

  /** Sends `command` once the proposal before it settled; throws that one's failure instead. */
  async send(groupId: GroupId, command: FsmCommand): Promise<void> {
    await this.settled();
    assert(this.inFlight === null, () => `at most ${restoreProposalsInFlightMax} restore proposal in flight`);
    // Never rejects: the failure is kept for the next call, so none goes unhandled.
    this.inFlight = this.propose(groupId, command).then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= { error };
      },
    );
  }

  /** Waits until nothing is in flight; throws the first failure of any proposal. */
  async settled(): Promise<void> {
    await this.quiet();
    this.throwIfFailed();
  }

  /** Waits until nothing is in flight, failed or not. */
  async quiet(): Promise<void> {
    const inFlight = this.inFlight;
    if (inFlight !== null) await inFlight;
    if (this.inFlight === inFlight) this.inFlight = null;
  }

  throwIfFailed(): void {
    if (this.failure !== null) throw this.failure.error;
  }
}
