import type { IntervalHistogram } from 'node:perf_hooks';
import type { ReadMode } from '@conclave/raft';
import Fastify, { type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { ConclaveError, describeError, isExpectedError } from '../errors.js';
import type { MultiRaftHost } from '../host/host.js';
import { encodeKvCommand, type KvStateMachine } from '../host/kv-state-machine.js';
import { groupOfKey } from '../host/partition.js';
import type { GroupId } from '../host/ports.js';
import type { PeerSpec } from './agent.js';
import type { Address, AgentConfig } from './config.js';

export interface HttpServer {
  readonly address: Address;
  close(): Promise<void>;
}

/** The largest value the internal KV path accepts. */
export const valueBytesMax = 512 * 1024;
const keyBytesMax = 2048;

const formatAddress = (a: Address): string => `${a.host}:${a.port}`;

/**
 * The agent's HTTP endpoint: Consul's status endpoints for readiness checks, `agent/self`
 * for inspection, and a minimal key-value path (`/v1/internal/kv`) that drives the
 * multi-Raft host end to end until the full KV API arrives.
 */
export interface HttpOptions {
  readonly config: AgentConfig;
  readonly host: MultiRaftHost<unknown>;
  readonly machines: ReadonlyMap<GroupId, KvStateMachine>;
  readonly peers: readonly PeerSpec[];
  readonly raftAddress: Address;
  readonly logger: Logger;
  /** Event-loop delay in nanoseconds, as a perf_hooks histogram reports it. */
  readonly lag: Pick<IntervalHistogram, 'percentile' | 'max'>;
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
  const raftAddressOf = new Map(options.peers.map((p) => [p.nodeId, formatAddress(p.raft)]));
  raftAddressOf.set(config.nodeId, formatAddress(raftAddress));
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'http' }),
    bodyLimit: valueBytesMax,
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.get('/v1/status/leader', async (_request, reply) => {
    const leaderId = host.group(0).raw.status().leaderId;
    const address = leaderId === null ? '' : (raftAddressOf.get(leaderId) ?? '');
    // A JSON string, as Consul answers (fastify would send a bare string as text/plain).
    return reply.type('application/json').send(JSON.stringify(address));
  });

  app.get('/v1/status/peers', async () =>
    host
      .group(0)
      .raw.status()
      .confState.voters.map((id) => raftAddressOf.get(id) ?? id),
  );

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
      const { index } = await host.propose({ groupId, data: encodeKvCommand({ op: 'put', key, value }) });
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
        const item = machines.get(groupId)?.get(key);
        if (item === undefined) return reply.code(404).send({ code: 'NOT_FOUND', message: `no key ${key}` });
        return reply
          .header('x-conclave-index', String(item.modifyIndex))
          .type('application/octet-stream')
          .send(Buffer.from(item.value));
      } catch (error) {
        return sendError(reply, error);
      }
    },
  );

  // Operator: hand the leadership of one group to another voter (`conclave operator raft
  // transfer-leader`). Answered by the group's leader; others reply NOT_LEADER naming it.
  app.post<{ Querystring: { group?: string; to?: string } }>(
    '/v1/operator/raft/transfer-leader',
    async (request, reply) => {
      const groupId = Number(request.query.group);
      if (!Number.isInteger(groupId) || groupId < 0 || groupId >= host.groupCount) {
        return sendError(
          reply,
          new ConclaveError({
            code: 'CONFIG_INVALID',
            message: `group must be an integer in [0, ${host.groupCount})`,
          }),
        );
      }
      const to = request.query.to ?? '';
      const raw = host.group(groupId).raw;
      const started = raw.transferLeader(to);
      if (!started.ok) return sendError(reply, started.error);
      return { groupId, to };
    },
  );

  app.setErrorHandler((error, _request, reply) => sendError(reply, error));
  return app;
}

function checkKey(key: string): string {
  if (key.length === 0 || Buffer.byteLength(key) > keyBytesMax) {
    throw new ConclaveError({ code: 'CONFIG_INVALID', message: `key must be 1-${keyBytesMax} bytes` });
  }
  return key;
}

/** Expected failures get their catalogue status; anything else is a bug: 500, logged by fastify. */
function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (isExpectedError(error)) {
    const { code, status, advice } = describeError(error);
    const leaderId = 'leaderId' in error ? error.leaderId : null;
    return reply.code(status).send({ code, message: error.message, advice, leaderId });
  }
  const status =
    typeof error === 'object' && error !== null && 'statusCode' in error ? Number(error.statusCode) : 500;
  if (status >= 400 && status < 500) {
    return reply
      .code(status)
      .send({ code: 'BAD_REQUEST', message: error instanceof Error ? error.message : 'bad request' });
  }
  reply.log.error({ err: error }, 'unexpected error');
  return reply.code(500).send({ code: 'INTERNAL', message: 'internal error; see the server log' });
}
