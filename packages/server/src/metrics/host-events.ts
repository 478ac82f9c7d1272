import type { Logger } from 'pino';
import type { GroupObserver, HostObserver, SnapshotEvent } from '../host/observer.js';
import type { Metrics } from './metrics.js';

/**
 * The host's observer in the agent: records metrics, and logs exactly one line per
 * leadership change, membership change applied, and snapshot taken or installed. Every
 * line carries `event`, `group`, `term` and `index`, so a log search by group finds the
 * group's history in order.
 */
export function hostEvents(options: { metrics: Metrics; logger: Logger }): HostObserver {
  const { metrics } = options;
  const logger = options.logger.child({ component: 'raft' });
  return {
    group: (groupId) => groupEvents({ groupId, metrics, logger }),
    persisted: (sync, seconds) => metrics.walWritten(sync, seconds),
  };
}

function groupEvents(options: { groupId: number; metrics: Metrics; logger: Logger }): GroupObserver {
  const { groupId: group, metrics, logger } = options;
  const instruments = metrics.group(group);
  const snapshotLine = (kind: 'taken' | 'installed', event: SnapshotEvent) => {
    metrics.snapshot({ kind, bytes: event.bytes, seconds: event.seconds });
    logger.info(
      {
        event: `snapshot_${kind}`,
        group,
        term: event.term,
        index: event.index,
        bytes: event.bytes,
        ms: Math.round(event.seconds * 1e6) / 1e3,
      },
      `snapshot ${kind}`,
    );
  };
  return {
    proposalApplied: (seconds) => instruments.proposalSeconds.observe(seconds),
    proposalRefused: (code) => metrics.proposalRefused(code),
    batchApplied: (seconds) => instruments.applySeconds.observe(seconds),
    leaderChanged(event) {
      instruments.leaderChanges.inc();
      logger.info(
        {
          event: 'leader_changed',
          group,
          term: event.term,
          index: event.commitIndex,
          leader: event.leaderId,
          previousLeader: event.previousLeaderId,
        },
        'leader changed',
      );
    },
    confChangeApplied(event) {
      logger.info(
        {
          event: 'membership_changed',
          group,
          term: event.term,
          index: event.index,
          change: event.change.type,
          nodeId: event.change.nodeId,
        },
        'membership change applied',
      );
    },
    snapshotTaken: (event) => snapshotLine('taken', event),
    snapshotInstalled: (event) => snapshotLine('installed', event),
  };
}
