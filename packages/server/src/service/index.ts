import type { Entry } from '@conclave/raft';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Autopilot, type AutopilotLimits } from '../autopilot/autopilot.js';
import { ConclaveFsm, type FsmLimits, type FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId, StateMachine } from '../host/ports.js';
import { KvService, type ServiceLimits } from './conclave-service.js';
import { ForwardClient } from './forward-client.js';
import { registerInternalRoutes } from './internal-routes.js';
import { LocalGroups } from './local.js';
import { OperatorService } from './operator.js';
import { type ReaperLimits, RestoreReaper, stagingOf } from './restore-reaper.js';
import { GroupRouter, type PeerDirectory, type RouterLimits } from './router.js';
import { SessionKeeper, type SessionLimits } from './sessions.js';
import { SnapshotService } from './snapshot.js';
import { SnapshotCursors } from './snapshot-cursors.js';

export { KvService } from './conclave-service.js';
export { OperatorService } from './operator.js';
export type { PeerDirectory } from './router.js';
export { SessionKeeper } from './sessions.js';
export { type RestoreOutcome, SnapshotService } from './snapshot.js';
export type { ConclaveService } from './types.js';

/** How often sessions' TTLs and orphaned copies are checked (ms). */
export const sessionSweepIntervalMs = 1_000;

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
    const fsm = new ConclaveFsm(this.limits);
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

export interface ServiceRuntime {
  readonly service: KvService;
  readonly local: LocalGroups;
  /** Group calls to the group's leader (call) or to one named server (callServer). */
  readonly router: GroupRouter;
  readonly sessions: SessionKeeper;
  /** Operator views and commands over every group (status, transfer-leader, remove-peer). */
  readonly operator: OperatorService;
  /** User snapshots: save an archive of every group, restore one through Raft. */
  readonly snapshots: SnapshotService;
  /** Autopilot: replicated settings, health, dead server cleanup, the promotion policy. */
  readonly autopilot: Autopilot;
  /** Aborts restore stagings left orphaned on the groups this server leads. */
  readonly reaper: RestoreReaper;
  registerRoutes(app: FastifyInstance): void;
  /** End blocking queries, stop the session sweep, and close forwarding connections. */
  close(): Promise<void>;
}

/** Wire the service over a running host: local execution, forwarding, sessions. */
export function startService(options: {
  host: MultiRaftHost<FsmResult>;
  machines: GroupMachines;
  peers: PeerDirectory;
  tickMs: number;
  /** Wall clock for session TTLs and lock-delays (ms); tests pass their own. */
  now?: () => number;
  limits?: {
    service?: ServiceLimits;
    router?: RouterLimits;
    sessions?: SessionLimits;
    autopilot?: Partial<AutopilotLimits>;
    reaper?: Partial<ReaperLimits>;
  };
  /** For autopilot's action log; silent without one. */
  logger?: Logger;
}): ServiceRuntime {
  const { host, machines, peers, tickMs } = options;
  const fsm = (groupId: GroupId) => machines.fsm(groupId);
  let router: GroupRouter | null = null;
  const caller = () => {
    if (router === null) throw new Error('the router is used before it exists');
    return router;
  };
  const sessions = new SessionKeeper({
    host,
    fsm,
    caller,
    now: options.now ?? (() => Date.now()),
    ...(options.limits?.sessions === undefined ? {} : { limits: options.limits.sessions }),
  });
  let reaper: RestoreReaper | null = null;
  machines.observe((o) => {
    sessions.observe(o);
    reaper?.observeApplied(o);
  });
  machines.observeInstalls((groupId) => reaper?.observeInstalled(groupId));
  const stopping = new AbortController();
  const cursors = new SnapshotCursors({ now: options.now ?? (() => Date.now()) });
  const local = new LocalGroups({
    host,
    fsm,
    sessions: () => sessions,
    tickMs,
    stopping: stopping.signal,
    cursors,
  });
  const client = new ForwardClient();
  router = new GroupRouter({
    host,
    local,
    peers,
    client,
    tickMs,
    ...(options.limits?.router === undefined ? {} : { limits: options.limits.router }),
  });
  const service = new KvService({
    host,
    caller: router,
    sessions,
    fsm,
    peers,
    ...(options.limits?.service === undefined ? {} : { limits: options.limits.service }),
  });
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void sessions.sweep().finally(() => {
      sweeping = false;
    });
  }, sessionSweepIntervalMs);
  const operator = new OperatorService({ host, caller: router, local, client, peers });
  const snapshots = new SnapshotService({ host, caller: router, fsm });
  reaper = new RestoreReaper({
    host,
    caller: router,
    staging: (groupId) => stagingOf(fsm(groupId)),
    ownsStaging: (restoreId) => snapshots.stagesOwn(restoreId),
    now: options.now ?? (() => Date.now()),
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.limits?.reaper === undefined ? {} : { limits: options.limits.reaper }),
  });
  reaper.start();
  const autopilot = new Autopilot({
    host,
    fsm0: () => machines.fsm(0),
    caller: router,
    operator,
    tickMs,
    logger: options.logger ?? pino({ level: 'silent' }),
    now: options.now ?? (() => Date.now()),
    ...(options.limits?.autopilot === undefined ? {} : { limits: options.limits.autopilot }),
  });
  return {
    service,
    local,
    router,
    sessions,
    operator,
    autopilot,
    snapshots,
    reaper,
    registerRoutes: (app) => registerInternalRoutes(app, { local, groupCount: host.groupCount }),
    async close() {
      stopping.abort();
      clearInterval(sweep);
      cursors.closeAll();
      autopilot.stop();
      reaper.stop();
      await client.close();
    },
  };
}
