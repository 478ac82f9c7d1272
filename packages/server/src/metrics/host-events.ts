import { ConfChangeType } from '@conclave/raft';
import type { Logger } from 'pino';
import type { GroupObserver, HostObserver, SnapshotEvent } from '../host/observer.js';
import type { Metrics } from './metrics.js';

/**
 * The host's observer in the agent: records metrics, and logs exactly one line per
 * leadership change, membership change applied, and snapshot taken or installed. Every
 * line carries `event`, `group`, `term` and `index`, so a log search by group finds the
 * group's history in order. Leadership and membership lines are at info, a server's
 * removal from a group at warn, and each names the server concerned and the reason as
 * this server knows it (the member that asked for a change logs why, with its reason).
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
      const { term, leaderId: leader, previousLeaderId: previousLeader } = event;
      const reason = leaderChangeReason({ leader, previousLeader });
      logger.info(
        {
          event: 'leader_changed',
          group,
          server: leader,
          term,
          index: event.commitIndex,
          leader,
          previousLeader,
          reason,
        },
        `group ${group}: ${leader} leads in term ${term} (${reason})`,
      );
    },
    confChangeApplied(event) {
      const { type: change, nodeId: server } = event.change;
      const { term, index } = event;
      const fields = {
        event: 'membership_changed',
        group,
        server,
        term,
        index,
        change,
        reason: changeReasons[change],
      };
      const text = `group ${group}: server ${server} ${changeReasons[change]} (term ${term}, index ${index})`;
      // A removal is the change an operator must not miss: fewer servers, less tolerance.
      if (change === ConfChangeType.RemoveNode) logger.warn(fields, text);
      else logger.info(fields, text);
    },
    snapshotTaken: (event) => snapshotLine('taken', event),
    snapshotInstalled: (event) => snapshotLine('installed', event),
  };
}

/** What each kind of change did, as the membership line says it. */
const changeReasons: Readonly<Record<ConfChangeType, string>> = {
  [ConfChangeType.AddLearner]: 'added as a learner (joining; or demoted from voter)',
  [ConfChangeType.AddVoter]: 'made a voter (a caught-up learner promoted, or added)',
  [ConfChangeType.RemoveNode]: 'removed from the group',
};

/** Why the known leader changed, as far as this server can tell from its soft state. */
function leaderChangeReason(options: { leader: string; previousLeader: string | null }): string {
  if (options.previousLeader === null) return 'first leader known here';
  if (options.previousLeader === options.leader) return 're-elected in a new term';
  return `took over from ${options.previousLeader}`;
}
