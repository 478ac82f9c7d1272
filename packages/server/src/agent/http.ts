import type { IntervalHistogram } from 'node:perf_hooks';
import type { RemovedServer } from '@conclave/protocol';
import { groupOfKey } from '@conclave/protocol';
import type { ReadMode } from '@conclave/raft';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { registerAutopilotRoutes } from '../api/autopilot-routes.js';
import {
  answerErrorsFromCatalogue,
  frameworkErrorOptions,
  registerConsulApi,
  sendError,
} from '../api/index.js';
import { registerOperatorRoutes } from '../api/operator-routes.js';
import { registerSnapshotRoutes } from '../api/snapshot-routes.js';
import { ConclaveError } from '../errors.js';
import { encodeCommand, type FsmResult } from '../fsm/index.js';
import type { MultiRaftHost } from '../host/host.js';
import { Metrics, registerMetricsRoutes } from '../metrics/index.js';
import type { GroupMachines } from '../service/index.js';
import { type Address, type AgentConfig, apiLimitsOf } from './config.js';
import type { ServiceRuntime } from './runtime.js';

export interface HttpServer {
  readonly address: Address;
  close(): Promise<void>;
}

/**
 * The largest body the app reads: a forwarded transaction of 128 operations carries more
 * than one value. Consul's routes set their own, smaller limits.
 */
const internalBodyBytesMax = 8 * 1024 * 1024;
const keyBytesMax = 2048;
/** Answers from this status up are the server's failures: logged at warn, not debug. */
const serverErrorStatusMin = 500;
/** Routes between servers (forwarded group calls, leader-only reads and writes). */
const internalRoutePrefix = '/v1/internal/';

const formatAddress = (a: Address): string => `${a.host}:${a.port}`;

/**
 * The agent's HTTP endpoint: Consul's API (kv, txn, session, status, operator), the
 * internal call route peers forward group requests to, `agent/self` for inspection, and a
 * leader-only key path (`/v1/internal/kv`) that tests and benchmarks use to reach one
 * group's leader without forwarding.
 */
export interface HttpOptions {
  readonly config: AgentConfig;
  readonly host: MultiRaftHost<FsmResult>;
  readonly machines: GroupMachines;
  readonly service: ServiceRuntime;
  readonly raftAddress: Address;
  readonly logger: Logger;
  /** Event-loop delay in nanoseconds, as a perf_hooks histogram reports it. */
  readonly lag: Pick<IntervalHistogram, 'percentile' | 'max'>;
  /**
   * The agent's metrics, its sources already observed (host, machines, WAL, lag). Without
   * one, the app makes its own over host, machines and lag (tests).
   */
  readonly metrics?: Metrics;
  /** Servers removed from groups and not added back (the agent's removal log); none without. */
  readonly removedServers?: () => readonly RemovedServer[];
}

/** Listen on the configured HTTP address. */
export async function startHttp(options: HttpOptions): Promise<HttpServer> {
  const app = buildHttpApp(options);
  const { config } = options;
  await app.listen({ host: config.httpAddr.host, port: config.httpAddr.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : config.httpAddr.port;
  return { address: { host: config.httpAddr.host, port }, close: () => app.close() };
}

/** The routes, without a socket: tests drive them with inject(). */
export function buildHttpApp(options: HttpOptions) {
  const { config, host, machines, raftAddress, lag } = options;
  const logger = options.logger.child({ component: 'http' });
  const app = Fastify({
    // Typed as fastify's logger so the app is a plain FastifyInstance to the route modules.
    loggerInstance: logger as FastifyBaseLogger,
    // Fastify's own two info lines per request were most of a busy server's log (85 MB
    // per server in 4 minutes of benchmark), burying membership changes: registerRequestLog
    // writes one line per request instead, at debug.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: internalBodyBytesMax,
    ...frameworkErrorOptions({ headerBytesMax: config.httpHeaderBytesMax }),
  });
  // Before any route: even fastify's own refusals answer {code, message, advice}.
  answerErrorsFromCatalogue(app);
  registerRequestLog(app, logger);
  // First, so that its onResponse hook times every route registered after it.
  registerMetricsRoutes(app, options.metrics ?? ownMetrics({ host, machines, lag }));
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  registerConsulApi(app, {
    service: options.service.service,
    nodeName: config.nodeId,
    limits: apiLimitsOf(config),
  });
  options.service.registerRoutes(app);

  app.get('/v1/agent/self', async () => ({
    nodeId: config.nodeId,
    raftAddr: formatAddress(raftAddress),
    clusterId: config.clusterId,
    groups: [...Array(host.groupCount).keys()].map((groupId) => {
      const status = host.group(groupId).raw.status();
      return {
        groupId,
        role: status.role,
        leaderId: status.leaderId,
        term: status.term,
        commitIndex: status.commit,
        appliedIndex: status.applied,
        voters: status.confState.voters,
        learners: status.confState.learners,
      };
    }),
    eventLoopLagMs: { p50: lag.percentile(50) / 1e6, p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
  }));

  app.put<{ Params: { '*': string } }>('/v1/internal/kv/*', async (request, reply) => {
    const key = checkKey(request.params['*']);
    const body = request.body;
    const value = body instanceof Buffer ? new Uint8Array(body) : new Uint8Array(0);
    const groupId = groupOfKey({ key, groupCount: host.groupCount });
    try {
      const data = encodeCommand({ type: 'kv', op: { verb: 'set', key, value, flags: 0 } });
      const { index } = await host.propose({ groupId, data });
      return { groupId, index };
    } catch (error) {
      return sendError(reply, error);
    }
  });

  app.get<{ Params: { '*': string }; Querystring: { mode?: string } }>(
    '/v1/internal/kv/*',
    async (request, reply) => {
      const key = checkKey(request.params['*']);
      const mode = request.query.mode ?? 'quorum';
      if (mode !== 'quorum' && mode !== 'lease' && mode !== 'stale') {
        return sendError(
          reply,
          new ConclaveError({ code: 'CONFIG_INVALID', message: 'mode must be quorum, lease or stale' }),
        );
      }
      const groupId = groupOfKey({ key, groupCount: host.groupCount });
      try {
        if (mode !== 'stale') await host.read({ groupId, mode: mode as ReadMode });
        const item = machines.fsm(groupId).getKey(key);
        if (item === null)
          return sendError(reply, new ConclaveError({ code: 'KEY_NOT_FOUND', message: `no key ${key}` }));
        return reply
          .header('x-conclave-index', String(item.modifyIndex))
          .type('application/octet-stream')
          .send(Buffer.from(item.value));
      } catch (error) {
        return sendError(reply, error);
      }
    },
  );

  // Operator views and commands (transfer-leader, remove-peer), forwarded to each group's leader.
  const removedServers = options.removedServers ?? (() => []);
  registerOperatorRoutes(app, { operator: options.service.operator, removedServers });
  // Autopilot: its replicated configuration, health (429 when unhealthy) and state.
  registerAutopilotRoutes(app, {
    autopilot: options.service.autopilot,
    operator: options.service.operator,
    removedServers,
  });
  // User snapshots: GET saves an archive of every group, PUT restores one through Raft.
  registerSnapshotRoutes(app, { snapshots: options.service.snapshots, clusterId: config.clusterId });

  return app;
}

/**
 * One line per answered request: at debug, or at warn when the server failed a client's
 * request (5xx), so failures show at the default level (info) and successes cost nothing
 * there. A forwarded call between servers that fails stays at debug: during every leader
 * change a burst of them answers NOT_LEADER, the caller retries, and its own answer to the
 * client is logged if it still fails. Errors that are bugs (INTERNAL) are also logged with
 * their stack at error where they are answered.
 */
function registerRequestLog(app: FastifyInstance, logger: Logger): void {
  app.addHook('onResponse', (request, reply, done) => {
    const statusCode = reply.statusCode;
    const failed =
      statusCode >= serverErrorStatusMin && !(request.routeOptions.url ?? '').startsWith(internalRoutePrefix);
    // Checked first, so that at info a request allocates nothing here.
    if (failed || logger.isLevelEnabled('debug')) {
      const fields = {
        method: request.method,
        url: request.url,
        statusCode,
        ms: Math.round(reply.elapsedTime * 1e3) / 1e3,
      };
      if (failed) request.log.warn(fields, 'request failed');
      else request.log.debug(fields, 'request completed');
    }
    done();
  });
}

function ownMetrics(sources: Pick<HttpOptions, 'host' | 'machines' | 'lag'>): Metrics {
  const metrics = new Metrics();
  metrics.observeSources(sources);
  return metrics;
}

function checkKey(key: string): string {
  if (key.length === 0 || Buffer.byteLength(key) > keyBytesMax) {
    throw new ConclaveError({ code: 'CONFIG_INVALID', message: `key must be 1-${keyBytesMax} bytes` });
  }
  return key;
}
