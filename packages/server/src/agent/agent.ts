import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fnv1a32 } from '@conclave/protocol';
import type { NodeId, Snapshot } from '@conclave/raft';
import {
  DurableStorage,
  NodeDisk,
  SnapshotCorruptionError,
  SnapshotUnavailableError,
  WalCorruptionError,
} from '@conclave/storage';
import type { Logger } from 'pino';
import type { FsmResult } from '../fsm/index.js';
import { type HostControl, MultiRaftHost } from '../host/host.js';
import type { DurableLog, GroupId } from '../host/ports.js';
import { hostEvents, Metrics } from '../metrics/index.js';
import { GroupMachines } from '../service/index.js';
import { Transport } from '../transport/index.js';
import type { AddressBookView } from './address-book.js';
import { type Address, type AgentConfig, groupSnapshotLimits } from './config.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';
import { discoverCluster } from './discovery.js';
import { type HttpServer, startHttp } from './http.js';
import { claimDataDir } from './identity.js';
import { formsNewCluster } from './join.js';
import { createAgentLogger } from './logger.js';
import { ClusterMembership, type MembershipTuning } from './membership-runtime.js';
import { type ServiceRuntime, startService } from './runtime.js';

/** A peer named on the command line as `id@host:port`. */
export interface PeerSpec {
  readonly nodeId: NodeId;
  readonly raft: Address;
}

/**
 * A running Conclave server: durable storage, the transport, the multi-Raft host with its
 * ticker, and the HTTP endpoint. Created by {@link startAgent}; stopped by `stop()`.
 */
export interface Agent {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly raftAddress: Address;
  readonly httpAddress: Address;
  readonly host: MultiRaftHost<FsmResult>;
  /** Each group's replicated state machine on this server. */
  readonly machines: GroupMachines;
  /** The KV, txn and session service, which routes requests to groups' leaders. */
  readonly service: ServiceRuntime;
  /** Where every known server listens (Raft and HTTP), learned from handshakes and the log. */
  readonly addressBook: AddressBookView;
  /** This agent's metrics (its own registry), served at /v1/agent/metrics. */
  readonly metrics: Metrics;
  /** Hand leadership away, flush, close sockets and files. */
  stop(options?: { transferLeadership?: boolean }): Promise<void>;
}

/** How long a clean shutdown waits for leadership to move before closing anyway. */
const shutdownTransferTicksMax = 30;

/**
 * Start a server in this process. `config` comes from {@link resolveAgentConfig};
 * `peers` defaults to the servers `config.join` names by id (bare addresses are identified
 * while joining), and `logger` to {@link createAgentLogger}'s: stdout at `config.logLevel`,
 * in `config.logFormat`.
 */
export async function startAgent(options: {
  config: AgentConfig;
  peers?: readonly PeerSpec[];
  logger?: Logger;
  /** Leader balancing period in ticks; 0 turns it off (benchmarks pin leaders). */
  balanceIntervalTicks?: number;
  /** Join, promotion and membership request limits (tests shorten them). */
  membership?: MembershipTuning;
  /**
   * The server cannot go on (the cluster refuses to take it back after it was removed).
   * Default: log it at error level and stop the agent; `conclave agent` then exits 1.
   */
  onFatal?: (error: Error) => void;
}): Promise<Agent> {
  const { config } = options;
  const peers = options.peers ?? namedPeers(config);
  const logger = options.logger ?? createAgentLogger(config);
  const dataDir = config.dataDir ?? mkdtempSync(join(tmpdir(), 'conclave-dev-'));
  // Before anything in the data dir is opened: a second agent on it would write the same WAL.
  const lock = acquireDataDirLock({ dir: dataDir, nodeId: config.nodeId });
  for (const stale of lock.replacedStale)
    logger.warn(
      { lock: lock.path, holder: stale.record },
      `took over a stale data dir lock: ${stale.reason}`,
    );
  try {
    return await startLocked({ ...options, config, peers, logger, dataDir, lock });
  } catch (error) {
    // A failed start in a process that goes on (tests, embedders) must not keep the data dir.
    lock.release();
    throw error;
  }
}

async function startLocked(options: {
  config: AgentConfig;
  peers: readonly PeerSpec[];
  logger: Logger;
  dataDir: string;
  lock: DataDirLock;
  balanceIntervalTicks?: number;
  membership?: MembershipTuning;
  onFatal?: (error: Error) => void;
}): Promise<Agent> {
  const { config, peers, logger, dataDir } = options;
  const { fresh } = claimDataDir({
    dir: dataDir,
    identity: { nodeId: config.nodeId, clusterId: config.clusterId, groups: config.groups },
  });
  const storage = await openStorage({ dir: join(dataDir, 'raft'), logger });
  const membership = new ClusterMembership({
    config,
    peers,
    dataDir,
    logger,
    ...(options.membership === undefined ? {} : { tuning: options.membership }),
    onFatal: (error) => {
      logger.error({ err: error }, `stopping: ${error.message}`);
      if (options.onFatal !== undefined) options.onFatal(error);
      else void agentRef?.stop({ transferLeadership: false });
    },
  });
  let agentRef: Agent | null = null;
  const machines = new GroupMachines();
  const log: DurableLog = {
    storage: (groupId) => storage.group(groupId),
    persist: (writes, persistOptions) => storage.persist(writes, persistOptions),
    // The WAL fdatasync on the thread pool: a slow disk must not hold heartbeats (host.ts).
    persistAsync: (writes) => storage.persistAsync(writes),
    // In the background: a large snapshot's checksum, write and fsync must not hold the loop.
    saveSnapshot: (o: { groupId: GroupId; snapshot: Snapshot; compactIndex: number }) =>
      storage.saveSnapshotInBackground({
        groupId: o.groupId,
        snapshot: o.snapshot,
        compactThroughIndex: o.compactIndex,
      }),
  };
  let host: MultiRaftHost<FsmResult> | null = null;
  const metrics = new Metrics();
  const transport = new Transport({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    listen: config.bind,
    peers: new Map(peers.map((p) => [p.nodeId, p.raft])),
    logger,
    onMessages: (_from, envelopes) => host?.receive(envelopes),
    ...(config.advertise === null
      ? {}
      : { advertiseRaft: { host: config.advertise, port: config.bind.port } }),
    ...membership.transportHooks(),
  });
  const boundRaft = await transport.start();
  // What others are told and shown: the advertised host (a pod's DNS name) with our ports.
  const raftAddress = advertised(config, boundRaft);
  // Bootstrap whenever the log holds no group yet, not whenever identity.json is new: a crash
  // between writing identity.json and the bootstrap frame must not leave groups without voters,
  // and a data dir that lost only identity.json must not have its log reset. A server that
  // joins a running cluster instead starts with empty groups and receives them from leaders.
  // The transport listens first: servers forming a cluster from a plain address list learn
  // each other's ids by asking, and must be able to answer while they ask.
  let formsCluster: boolean;
  try {
    formsCluster = await bootstrapIfFirstStart({ storage, config, peers, logger, transport });
  } catch (error) {
    await transport.close();
    storage.close();
    throw error;
  }
  host = new MultiRaftHost<FsmResult>({
    nodeId: config.nodeId,
    groupCount: config.groups,
    log,
    transport: { send: (to, envelopes) => transport.send(to, envelopes), flush: () => transport.flush() },
    stateMachine: (groupId) => machines.machine(groupId),
    seed: fnv1a32(new TextEncoder().encode(config.nodeId)),
    onConfChange: membership.onConfChange,
    observer: hostEvents({ metrics, logger }),
    limits: groupSnapshotLimits(config),
    // The ticker below runs by this clock: a lease read is trusted only while it keeps pace.
    clock: { tickMs: config.tickMs },
    ...(options.balanceIntervalTicks === undefined
      ? {}
      : { balanceIntervalTicks: options.balanceIntervalTicks }),
  });
  const running = host;
  membership.attach({ host: running, transport });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  metrics.observeSources({ host: running, machines, lag, wal: storage.wal });
  const ticker = setInterval(() => {
    running.tick();
    membership.tick();
  }, config.tickMs);
  const service = startService({
    host: running,
    machines,
    peers: {
      httpAddress: (id) => membership.addressBook.httpAddress(id),
      raftAddress: (id) => (id === config.nodeId ? raftAddress : membership.addressBook.raftAddress(id)),
    },
    tickMs: config.tickMs,
    logger,
  });
  // Learners are promoted once stable for autopilot's ServerStabilizationTime (replicated).
  membership.usePromotionPolicy(() => service.autopilot.promotionPolicy());
  const http: HttpServer = await startHttp({
    removedServers: () => membership.removals.list(),
    config,
    host: running,
    machines,
    service,
    raftAddress,
    logger,
    lag,
    metrics,
  });
  const agent: Agent = {
    nodeId: config.nodeId,
    dataDir,
    raftAddress,
    httpAddress: http.address,
    host: running,
    machines,
    service,
    addressBook: membership.addressBook,
    metrics,
    async stop(stopOptions = {}) {
      membership.stop();
      if (stopOptions.transferLeadership ?? true) await handOffLeadership(running, config.tickMs);
      clearInterval(ticker);
      lag.disable();
      // Blocking queries end first, so the HTTP server has no request left to wait for.
      await service.close();
      running.stop();
      // A WAL fdatasync may still be in flight on the thread pool: the WAL closes after it.
      await running.writesSettled();
      await http.close();
      await transport.close();
      storage.close();
      options.lock.release();
      logger.info({ nodeId: config.nodeId }, 'conclave agent stopped');
    },
  };
  agentRef = agent;
  try {
    await membership.start({ raftAddress, httpAddress: advertised(config, http.address), formsCluster });
  } catch (error) {
    await agent.stop({ transferLeadership: false });
    throw error;
  }
  logger.info(
    { nodeId: config.nodeId, raft: raftAddress, http: http.address, dataDir, groups: config.groups, fresh },
    'conclave agent started',
  );
  return agent;
}

/** `address` with the advertised host in place of the bound one, when `--advertise` is set. */
function advertised(config: AgentConfig, address: Address): Address {
  return config.advertise === null ? address : { host: config.advertise, port: address.port };
}

/** The servers `--join` names as `id@host:port`: peers from the start. */
function namedPeers(config: AgentConfig): PeerSpec[] {
  return config.join.flatMap((target) =>
    target.nodeId === null ? [] : [{ nodeId: target.nodeId, raft: target.raft }],
  );
}

/**
 * The data dir's log or snapshots are damaged in a way recovery must not repair (data an
 * fsync acknowledged would be lost). The server refuses to start rather than serve from it.
 */
export class DataDirDamagedError extends Error {
  override readonly name = 'DataDirDamagedError';

  constructor(options: { message: string; cause: unknown }) {
    super(options.message, { cause: options.cause });
  }
}

async function openStorage(options: { dir: string; logger: Logger }): Promise<DurableStorage> {
  try {
    // Every group's snapshot file read at once on the thread pool (DurableStorage.openAsync).
    return await DurableStorage.openAsync({ disk: new NodeDisk(), dir: options.dir, logger: options.logger });
  } catch (error) {
    const refuse = (what: string) =>
      new DataDirDamagedError({
        message: `refusing to start: ${what}; not serving from a damaged log (restore this server's data dir, or wipe it and add the server back)`,
        cause: error,
      });
    if (error instanceof WalCorruptionError) {
      throw refuse(
        `the write-ahead log is damaged (${error.code}) in ${join(options.dir, 'wal', error.file)} at offset ${error.offset}: ${error.detail}`,
      );
    }
    if (error instanceof SnapshotCorruptionError) {
      throw refuse(
        `a snapshot is damaged (${error.code}) in ${join(options.dir, 'snap', error.file)} at offset ${error.offset}`,
      );
    }
    if (error instanceof SnapshotUnavailableError) throw refuse(error.message);
    throw error;
  }
}

/**
 * On a first start (no group in the log), decide whether this server forms the cluster, and
 * if so write every group's first configuration. `--dev` and a `--join` list naming every
 * server by id decide at once; a list with plain addresses asks them first (discovery.ts).
 * Returns whether this server formed the cluster (false: it joins one, or it restarted).
 */
async function bootstrapIfFirstStart(options: {
  storage: DurableStorage;
  config: AgentConfig;
  peers: readonly PeerSpec[];
  logger: Logger;
  transport: Transport;
}): Promise<boolean> {
  const { storage, config, peers, logger, transport } = options;
  const formsCluster = formsNewCluster({ config, peers });
  if (storage.wal.groupIds().length > 0) return formsCluster;
  if (formsCluster) {
    bootstrapGroups({ storage, config, voters: [config.nodeId, ...peers.map((p) => p.nodeId)], logger });
    return true;
  }
  if (config.bootstrapExpect === null || config.join.every((target) => target.nodeId !== null)) return false;
  const outcome = await discoverCluster({
    selfId: config.nodeId,
    bootstrapExpect: config.bootstrapExpect,
    targets: config.join,
    identify: (address) => transport.identify(address),
    logger,
  });
  if (outcome.kind === 'join') return false;
  bootstrapGroups({ storage, config, voters: outcome.voters, logger });
  return true;
}

/** First start: every group begins with the same voters on every server. */
function bootstrapGroups(options: {
  storage: DurableStorage;
  config: AgentConfig;
  voters: readonly NodeId[];
  logger: Logger;
}): void {
  const { storage, config, logger } = options;
  const voters = [...new Set(options.voters)].sort();
  const expect = config.bootstrapExpect ?? voters.length;
  if (voters.length !== expect) {
    throw new Error(
      `--bootstrap-expect ${expect} but ${voters.length} servers are named (${voters.join(', ')}); name every server with --join`,
    );
  }
  storage.persist(
    Array.from({ length: config.groups }, (_, groupId) => ({
      groupId,
      entries: [],
      hardState: null,
      snapshot: {
        metadata: { index: 0, term: 0, confState: { voters, learners: [] } },
        data: new Uint8Array(0),
      },
    })),
  );
  logger.info({ voters, groups: config.groups }, 'bootstrapped every group');
}

/** Move leadership off this server, waiting a bounded number of ticks. */
async function handOffLeadership(host: HostControl, tickMs: number): Promise<void> {
  const leads = () =>
    [...Array(host.groupCount).keys()].some((g) => host.group(g).raw.status().role === 'leader');
  if (!leads() || host.transferAllLeadership() === 0) return;
  for (let i = 0; i < shutdownTransferTicksMax && leads(); i++) {
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
}
