import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type Archive,
  type ArchiveMeta,
  archiveStream,
  checkGroupState,
  type GroupCapture,
  readArchive,
  snapshotKeyCount,
} from '../archive/index.js';
import { ConclaveError } from '../errors.js';
import type { ConclaveFsm, FsmCommand, FsmResult } from '../fsm/index.js';
import { restoreChunkBytesMax } from '../fsm/restore-wire.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import { expectApply, type GroupCaller } from './calls.js';

export interface SnapshotLimits {
  /** Largest archive accepted for a restore, compressed and unpacked alike (bytes). */
  readonly archiveBytesMax: number;
  /** State bytes per restore-chunk command: under the core's 1 MiB proposal limit. */
  readonly restoreChunkBytes: number;
}

export const defaultSnapshotLimits: SnapshotLimits = {
  archiveBytesMax: 1024 * 1024 * 1024,
  restoreChunkBytes: restoreChunkBytesMax,
};

/** What a restore replaced: each group's index after its commit. */
export interface RestoreOutcome {
  readonly groups: readonly { groupId: number; index: number; keys: number }[];
}

/**
 * One group's state as this server holds it, for an archive: the FSM's copy-on-write view
 * is taken at once (with the term and configuration of the same moment), then encoded one
 * bounded step per event-loop turn, so applies, ticks and heartbeats go on meanwhile.
 */
export async function captureGroup(options: {
  host: MultiRaftHost<FsmResult>;
  fsm: ConclaveFsm;
  groupId: GroupId;
}): Promise<GroupCapture> {
  const { fsm, groupId } = options;
  const status = options.host.group(groupId).raw.status();
  const steps = fsm.snapshotSteps();
  // The first step takes the view; the applied index is read in the same synchronous turn.
  let step = steps.next();
  const index = fsm.appliedIndex();
  while (step.done !== true) {
    await nextTurn();
    step = steps.next();
  }
  const data = step.value;
  return {
    groupId,
    index,
    term: status.term,
    voters: [...status.confState.voters],
    learners: [...status.confState.learners],
    keys: snapshotKeyCount(data),
    data,
  };
}

/**
 * User snapshots of every group: `save` streams an archive of each group's state, taken
 * from its leader (or this server's own with `stale`); `restore` verifies an archive whole,
 * then replaces each group's state through Raft, so every server converges.
 */
export class SnapshotService {
  private readonly limits: SnapshotLimits;

  constructor(
    private readonly options: {
      host: MultiRaftHost<FsmResult>;
      caller: GroupCaller;
      fsm: (groupId: GroupId) => ConclaveFsm;
      limits?: Partial<SnapshotLimits>;
    },
  ) {
    this.limits = { ...defaultSnapshotLimits, ...options.limits };
    if (!(this.limits.restoreChunkBytes > 0 && this.limits.restoreChunkBytes <= restoreChunkBytesMax)) {
      throw new ConclaveError({
        code: 'CONFIG_INVALID',
        message: `restoreChunkBytes must be in (0, ${restoreChunkBytesMax}]`,
      });
    }
  }

  get archiveBytesMax(): number {
    return this.limits.archiveBytesMax;
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

  /** The gzipped archive, one group at a time; a failed capture errors the stream. */
  save(options: { clusterId: string; stale: boolean; nowMs?: number }): Readable {
    return archiveStream({
      clusterId: options.clusterId,
      createdAtMs: options.nowMs ?? Date.now(),
      groups: this.captures(options.stale),
    });
  }

  private async *captures(stale: boolean): AsyncGenerator<GroupCapture> {
    const { host, caller } = this.options;
    for (let groupId = 0; groupId < host.groupCount; groupId++) {
      if (stale) {
        yield await captureGroup({ host, fsm: this.options.fsm(groupId), groupId });
        continue;
      }
      const reply = await caller.call({ groupId, call: { kind: 'snapshot' } });
      if (reply.kind !== 'snapshot') throw new Error(`expected a snapshot reply, got ${reply.kind}`);
      yield reply.capture;
    }
  }

  /** Verifies an archive (SNAPSHOT_ARCHIVE_INVALID) without changing anything. */
  verify(gzipped: Uint8Array): Archive {
    const archive = readArchive(gzipped, {
      archiveBytesMax: this.limits.archiveBytesMax,
      groupCount: this.options.host.groupCount,
    });
    // Decoded one group at a time and dropped: only the check is kept.
    for (const group of archive.groups) checkGroupState(group);
    return archive;
  }

  /**
   * Replaces every group's state with the archive's. Everything is verified before the
   * first command is proposed, so a corrupt or mismatched archive changes nothing. Each
   * group is replaced atomically at its commit; groups are replaced one after another, so
   * a failure part-way (RESTORE_FAILED, NO_LEADER, TIMEOUT) leaves earlier groups restored.
   */
  async restore(gzipped: Uint8Array): Promise<RestoreOutcome & { meta: ArchiveMeta }> {
    const archive = this.verify(gzipped);
    const groups: { groupId: number; index: number; keys: number }[] = [];
    for (const group of archive.groups) {
      const index = await this.restoreGroup({
        groupId: group.meta.groupId,
        data: group.data,
        meta: group.meta,
      });
      groups.push({ groupId: group.meta.groupId, index, keys: group.meta.keys });
    }
    return { meta: archive.meta, groups };
  }

  private async restoreGroup(options: {
    groupId: GroupId;
    data: Buffer;
    meta: { bytes: number; sha256: string };
  }): Promise<number> {
    const { groupId, data } = options;
    const restoreId = randomUUID();
    await this.step(groupId, { type: 'restore-begin', restoreId, ...options.meta });
    const size = this.limits.restoreChunkBytes;
    for (let seq = 0; seq * size < data.length; seq++) {
      const chunk = data.subarray(seq * size, (seq + 1) * size);
      await this.step(groupId, { type: 'restore-chunk', restoreId, seq, data: chunk });
    }
    return this.step(groupId, { type: 'restore-commit', restoreId });
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
