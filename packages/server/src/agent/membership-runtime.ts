import { type ConfChange, ConfChangeType, type NodeId } from '@conclave/raft';
import type { Logger } from 'pino';
import type { GroupId } from '../host/ports.js';
import { decodeRemovalReason } from '../service/removal-context.js';
import type { Transport, TransportOptions } from '../transport/transport.js';
import { AddressBook } from './address-book.js';
import type { Address, AgentConfig } from './config.js';
import { groupsAwaitingMembership, type JoinLimits, joinCluster } from './join.js';
import {
  learnFromConfChange,
  type MembershipHost,
  type MembershipLimits,
  MembershipService,
} from './membership.js';
import type { MemberInfo } from './membership-protocol.js';
import { LearnerPromoter, type PromotionLimits, type PromotionPolicy } from './promotion.js';
import { type RejoinLimits, RejoinWatcher } from './rejoin.js';
import { RemovalLog } from './removals.js';

/** Knobs for tests and operators; every field has a default. */
export interface MembershipTuning {
  readonly promotion?: Partial<PromotionLimits>;
  readonly rejoin?: Partial<RejoinLimits>;
  readonly join?: Partial<JoinLimits>;
  readonly requests?: Partial<MembershipLimits>;
}

/**
 * Everything an agent needs for servers to come and go: the address book, the transport
 * and host hooks that feed it, the join service members run, the learner promoter, and the
 * join a new server performs at start. Kept out of agent.ts so the agent only wires it.
 */
export class ClusterMembership {
  readonly addressBook: AddressBook;
  /** Servers removed from groups and not added back (which, when, why), kept in the data dir. */
  readonly removals: RemovalLog;
  private service: MembershipService | null = null;
  private promoter: LearnerPromoter | null = null;
  private rejoin: RejoinWatcher | null = null;
  /** This server as others reach it, known once start() has the listening addresses. */
  private self: MemberInfo | null = null;
  private host: MembershipHost | null = null;
  private transport: Transport | null = null;
  private readonly joinAbort = new AbortController();
  /** Autopilot's stabilization settings, once the service exists (see usePromotionPolicy). */
  private promotionPolicy: PromotionPolicy | null = null;

  constructor(
    private readonly options: {
      config: AgentConfig;
      /** Servers named as `id@host:port`: their configured address wins at start. */
      peers: readonly { nodeId: NodeId; raft: Address }[];
      dataDir: string;
      logger: Logger;
      tuning?: MembershipTuning;
      /** The cluster refuses to take this server back: it cannot serve, and should stop. */
      onFatal?: (error: Error) => void;
    },
  ) {
    this.addressBook = AddressBook.open({ dir: options.dataDir, logger: options.logger });
    this.removals = RemovalLog.open({ dir: options.dataDir, logger: options.logger });
    for (const peer of options.peers) this.addressBook.learn(peer.nodeId, { raft: peer.raft });
  }

  /** Spread into the transport's options: it dials, accepts and reports through the address book. */
  transportHooks(): Pick<TransportOptions, 'resolvePeer' | 'onPeerIdentified' | 'onControl'> {
    return {
      resolvePeer: (nodeId) => this.addressBook.raftAddress(nodeId) ?? undefined,
      onPeerIdentified: (peer) => this.addressBook.learn(peer.nodeId, { raft: peer.raft, http: peer.http }),
      onControl: (from, value) => this.service?.onControl(from, value),
    };
  }

  /** The host's `onConfChange`. */
  readonly onConfChange = (event: { groupId: GroupId; index: number; change: ConfChange }): void => {
    const { config, logger } = this.options;
    learnFromConfChange({ selfId: config.nodeId, addressBook: this.addressBook, logger, event });
    const { change, groupId } = event;
    if (change.type === ConfChangeType.RemoveNode) {
      const reason = decodeRemovalReason(change.context) ?? 'removed (no reason recorded)';
      // The change itself is logged at warn where every server applies it (metrics/host-events.ts).
      this.removals.removed({ nodeId: change.nodeId, groupId, atMs: Date.now(), reason });
    } else {
      this.removals.readded({ nodeId: change.nodeId, groupId });
    }
  };

  /** Once the host and transport exist. */
  attach(options: { host: MembershipHost; transport: Transport }): void {
    const { config, logger, tuning } = this.options;
    this.host = options.host;
    this.transport = options.transport;
    this.service = new MembershipService({
      nodeId: config.nodeId,
      host: options.host,
      control: options.transport,
      addressBook: this.addressBook,
      logger,
      ...(tuning?.requests === undefined ? {} : { limits: tuning.requests }),
    });
    this.promoter = new LearnerPromoter({
      host: options.host,
      logger,
      ...(tuning?.promotion === undefined ? {} : { limits: tuning.promotion }),
      policy: () => this.promotionPolicy?.() ?? {},
    });
    const service = this.service;
    this.rejoin = new RejoinWatcher({
      self: () => this.self ?? { nodeId: config.nodeId, raft: config.bind, http: config.httpAddr },
      host: options.host,
      requestJoin: (request) => service.requestJoin(request),
      logger,
      removedBy: (groupId) => {
        const self = this.removals.list().find((r) => r.id === config.nodeId);
        return self?.groups.includes(groupId) === true ? self.reason : null;
      },
      onGiveUp: (error) => this.options.onFatal?.(error),
      ...(tuning?.rejoin === undefined ? {} : { limits: tuning.rejoin }),
    });
  }

  /** Let autopilot's replicated settings decide when learners are stable (set once the service runs). */
  usePromotionPolicy(policy: PromotionPolicy): void {
    this.promotionPolicy = policy;
  }

  /** Once per host tick. */
  tick(): void {
    this.promoter?.tick();
    // Only once this server announced where it listens: a rejoin request carries it.
    if (this.self !== null) this.rejoin?.tick();
  }

  /**
   * Once HTTP listens: announce both addresses, then, for a server that joins rather than
   * forms the cluster and has not received every group yet, join (bounded; JOIN_FAILED).
   */
  async start(options: { raftAddress: Address; httpAddress: Address; formsCluster: boolean }): Promise<void> {
    const { config, logger, tuning } = this.options;
    const { host, transport, service } = this;
    if (host === null || transport === null || service === null) throw new Error('start() before attach()');
    transport.setAdvertisedHttp(options.httpAddress);
    this.self = { nodeId: config.nodeId, raft: options.raftAddress, http: options.httpAddress };
    this.addressBook.learn(config.nodeId, { raft: options.raftAddress, http: options.httpAddress });
    if (options.formsCluster || config.join.length === 0) return;
    const waiting = groupsAwaitingMembership(host);
    // A restarted member, or a joiner that received every group before it stopped, just starts.
    if (waiting.length === 0) return;
    logger.info(
      { groups: waiting.length, join: config.join },
      `joining the cluster: ${waiting.length} of ${host.groupCount} groups have not reached this server yet`,
    );
    await joinCluster({
      self: { nodeId: config.nodeId, raft: options.raftAddress, http: options.httpAddress },
      targets: config.join,
      groupCount: host.groupCount,
      identify: (address) => transport.identify(address),
      requestJoin: (request) => service.requestJoin(request),
      logger,
      signal: this.joinAbort.signal,
      ...(tuning?.join === undefined ? {} : { limits: tuning.join }),
    });
  }

  stop(): void {
    this.rejoin?.stop();
    this.joinAbort.abort();
    this.service?.stop();
  }
}
