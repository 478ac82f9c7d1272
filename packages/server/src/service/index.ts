import type { Entry } from '@conclave/raft';
import { ConclaveFsm, type FsmLimits, type FsmResult } from '../fsm/index.js';
import type { GroupId, StateMachine } from '../host/ports.js';

export { KvService, type ServiceLimits } from './conclave-service.js';
export { ForwardClient } from './forward-client.js';
export { registerInternalRoutes } from './internal-routes.js';
export { LocalGroups } from './local.js';
export { OperatorService } from './operator.js';
export { type ReaperLimits, RestoreReaper, stagingOf } from './restore-reaper.js';
export { GroupRouter, type PeerDirectory, type RouterLimits } from './router.js';
export { SessionKeeper, type SessionLimits } from './sessions.js';
export { type RestoreOutcome, SnapshotService } from './snapshot.js';
export { SnapshotCursors } from './snapshot-cursors.js';
export { TtlKeeper } from './ttl.js';
export type { ConclaveService } from './types.js';

/**
 * One state machine per group, created before the host so that the host can restore them
 * from snapshots; every applied result is shown to the session keeper (lock-delays).
 */
export class GroupMachines {
  private readonly fsms = new Map<GroupId, ConclaveFsm>();
  private observer: ((options: { groupId: GroupId; result: FsmResult }) => void) | null = null;
  private installObserver: ((groupId: GroupId) => void) | null = null;

  /** `limits`: every group's FSM limits (tests lower the state quota to reach it). */
  constructor(private readonly limits: Partial<FsmLimits> = {}) {}

  machine(groupId: GroupId): StateMachine<FsmResult> {
    const fsm = new ConclaveFsm(this.limits, { groupId });
    this.fsms.set(groupId, fsm);
    return {
      apply: (entry: Entry) => {
        const result = fsm.apply(entry);
        this.observer?.({ groupId, result });
        return result;
      },
      snapshot: () => fsm.snapshot(),
      snapshotSteps: () => fsm.snapshotSteps(),
      restore: (data) => {
        fsm.restore(data);
        this.installObserver?.(groupId);
      },
    };
  }

  fsm(groupId: GroupId): ConclaveFsm {
    const fsm = this.fsms.get(groupId);
    if (fsm === undefined) throw new Error(`no state machine for group ${groupId}`);
    return fsm;
  }

  observe(observer: (options: { groupId: GroupId; result: FsmResult }) => void): void {
    this.observer = observer;
  }

  /** Told of every Raft snapshot a group loads or installs (its state replaced unapplied). */
  observeInstalls(observer: (groupId: GroupId) => void): void {
    this.installObserver = observer;
  }
}
