import type { GroupLog } from '../group-log.js';
import type { WalRecord } from './format.js';

/** The records do not replay onto the log: a splice, a lost frame or a bug. */
export class ReplayError extends Error {
  override readonly name = 'ReplayError';
}

/**
 * Apply one record to a group's log. The WAL runs every durable write through this, live
 * and on recovery, so replay reproduces exactly what the live log went through.
 *
 * Recovery may start from a checkpoint (WAL metadata written when old segments were
 * deleted) whose compaction point C is newer than records in the remaining segments. Those
 * older records are replayed clamped to indexes above C: an entry at or below C is skipped,
 * a marker older than C empties the log but moves neither C nor the snapshot back. Replayed
 * that way, the log after each record equals the live log of that moment restricted to
 * indexes above C, so the final log is exact (docs/storage.md, "Recovery").
 *
 * `ceiling` (rebuilding a group from an older snapshot when the newest is unreadable):
 * snapshots and compactions above it are ignored, except an installed snapshot above it,
 * which threw the entries away, so the rebuild fails.
 */
export function applyRecord(log: GroupLog, record: WalRecord, options: { ceiling?: number } = {}): void {
  const ceiling = options.ceiling ?? Number.POSITIVE_INFINITY;
  const offset = log.compactedThrough().index;
  switch (record.type) {
    case 'entries': {
      let start = 0;
      while (start < record.entries.length && (record.entries[start]?.index ?? 0) <= offset) start++;
      const kept = start === 0 ? record.entries : record.entries.slice(start);
      const first = kept[0];
      if (first === undefined) return;
      if (first.index !== log.lastIndex() + 1) {
        throw new ReplayError(
          `group ${log.groupId}: entries start at ${first.index} but the log ends at ${log.lastIndex()}`,
        );
      }
      log.appendContiguous(kept);
      return;
    }
    case 'hardState':
      log.setHardState(record.hardState);
      return;
    case 'truncateSuffix':
      log.truncateFrom(Math.max(record.fromIndex, offset + 1));
      return;
    case 'compact': {
      const through = Math.min(record.throughIndex, ceiling);
      if (through <= offset) return;
      if (through > log.lastIndex() || through > log.snapshotMetadata().index) {
        throw new ReplayError(
          `group ${log.groupId}: compact through ${through} beyond the log or its snapshot`,
        );
      }
      log.compactThrough(through);
      return;
    }
    case 'snapshot': {
      const { metadata } = record;
      if (record.mode === 'installed') {
        if (metadata.index > ceiling) {
          throw new ReplayError(
            `group ${log.groupId}: installed snapshot ${metadata.index} replaced the log above ${ceiling}`,
          );
        }
        log.resetTo(metadata);
        return;
      }
      if (metadata.index > ceiling) return;
      log.noteSnapshot(metadata);
      return;
    }
  }
}
