import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Autopilot, type AutopilotLimits } from '../autopilot/autopilot.js';
import type { FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import type { GroupId } from '../host/ports.js';
import {
  ForwardClient,
  type GroupMachines,
  GroupRouter,
  KvService,
  LocalGroups,
  OperatorService,
  type PeerDirectory,
  type ReaperLimits,
  RestoreReaper,
  type RouterLimits,
  registerInternalRoutes,
  type ServiceLimits,
  SessionKeeper,
  type SessionLimits,
  SnapshotCursors,
  SnapshotService,
  stagingOf,
  TtlKeeper,
} from '../service/index.js';

/** How often sessions' TTLs and orphaned copies are checked (ms). */
export const sessionSweepIntervalMs = 1_000;

/**
 * The server's request-serving runtime, composed over a running host: the service layer
 * (local execution, forwarding, sessions, operator calls, snapshots) and autopilot, which
 * sits above it. Composed here, at the top, so that no layer reaches up to build another.
 */
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
  /** For autopilot's and operator commands' action log; silent without one. */
  logger?: Logger;
}): ServiceRuntime {
  const { host, machines, peers, tickMs } = options;
  const logger = options.logger ?? pino({ level: 'silent' });
  const fsm = (groupId: GroupId) => machines.fsm(groupId);
  const stopping = new AbortController();
  const cursors = new SnapshotCursors({ now: options.now ?? (() => Date.now()) });
  // Local execution reads the session keeper (lock-delays) only when a call runs, after
  // everything here exists; the keeper needs the router, which needs local execution.
  const local = new LocalGroups({
    host,
    fsm,
    sessions: (): SessionKeeper => sessions,
    tickMs,
    stopping: stopping.signal,
    cursors,
    logger,
  });
  const client = new ForwardClient();
  const router = new GroupRouter({
    host,
    local,
    peers,
    client,
    tickMs,
    ...(options.limits?.router === undefined ? {} : { limits: options.limits.router }),
  });
  const sessions = new SessionKeeper({
    host,
    fsm,
    caller: router,
    now: options.now ?? (() => Date.now()),
    ...(options.limits?.sessions === undefined ? {} : { limits: options.limits.sessions }),
  });
  let reaper: RestoreReaper | null = null;
  machines.observe((o) => {
    sessions.observe(o);
    reaper?.observeApplied(o);
  });
  machines.observeInstalls((groupId) => reaper?.observeInstalled(groupId));
  const service = new KvService({
    host,
    caller: router,
    sessions,
    fsm,
    peers,
    ...(options.limits?.service === undefined ? {} : { limits: options.limits.service }),
  });
  const ttls = new TtlKeeper({ host, fsm, caller: router, now: options.now ?? (() => Date.now()) });
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void Promise.all([sessions.sweep(), ttls.sweep()]).finally(() => {
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
    logger,
    ...(options.limits?.reaper === undefined ? {} : { limits: options.limits.reaper }),
  });
  reaper.start();
  const autopilot = new Autopilot({
    host,
    fsm0: () => machines.fsm(0),
    caller: router,
    operator,
    tickMs,
    logger,
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
