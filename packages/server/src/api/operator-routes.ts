import type { RemovedServer } from '@conclave/protocol';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConclaveError, type ErrorCode, errorCatalogue } from '../errors.js';
import type { GroupOutcome, OperatorService } from '../service/operator.js';
import type { GroupStatus } from '../service/status.js';
import { badRequest, hasParam, paramValue, queryOf, quote } from './query.js';

/** Longest node id accepted in a query (the Raft core's own limit is 64 bytes). */
const nodeIdCharsMax = 64;

/**
 * Operator endpoints over every Raft group: the cluster overview, one group's status (from
 * its leader, or this server with `?stale`), each server's own view of its groups, and the
 * commands: remove a server from groups, move leadership. Commands are forwarded to each
 * group's leader, so any server accepts them.
 */
export function registerOperatorRoutes(
  app: FastifyInstance,
  options: {
    operator: OperatorService;
    /** Servers removed from groups and not added back, as this server applied it. */
    removedServers?: () => readonly RemovedServer[];
  },
): void {
  const { operator } = options;
  const removed = options.removedServers ?? (() => []);

  app.get('/v1/operator/cluster', async () => ({ ...operator.cluster(), removedServers: removed() }));

  app.get<{ Params: { groupId: string } }>('/v1/operator/groups/:groupId', async (request) => {
    const groupId = groupParam(request.params.groupId, operator.groupCount, 'BAD_REQUEST');
    const stale = hasParam(queryOf(request), 'stale');
    return groupJson(await operator.groupStatus({ groupId, stale }));
  });

  app.get('/v1/operator/members', async () => ({
    servers: (await operator.members()).map((m) => ({ ...m, groups: m.groups.map(groupJson) })),
  }));

  // Consul's remove-peer shape (`?id=`), plus `&group=N` for one group; every group without it.
  app.delete('/v1/operator/raft/peer', async (request, reply) => {
    const query = queryOf(request);
    const nodeId = nodeParam(paramValue(query, 'id'), 'id');
    const groupText = paramValue(query, 'group');
    const groupId =
      groupText === undefined ? null : groupParam(groupText, operator.groupCount, 'BAD_REQUEST');
    const groups = await operator.removePeer({ nodeId, groupId });
    return sendOutcomes(reply, { id: nodeId, groups });
  });

  // A bad group is CONFIG_INVALID and a bad target TRANSFER_TARGET_INVALID, as this route
  // answered when it only worked on the leader; without `group`, every group `to` votes in.
  app.post('/v1/operator/raft/transfer-leader', async (request, reply) => {
    const query = queryOf(request);
    const to = paramValue(query, 'to') ?? '';
    const groupText = paramValue(query, 'group');
    const groupId =
      groupText === undefined ? null : groupParam(groupText, operator.groupCount, 'CONFIG_INVALID');
    const groups = await operator.transferLeader({ to, groupId });
    return sendOutcomes(reply, { to, ...(groupId === null ? {} : { groupId }), groups });
  });
}

/** A group's status for people and scripts: times as ISO text, the log's size spelled out. */
export function groupJson(status: GroupStatus) {
  const { members, snapshotTimeMs, role, leaderId, nodeId, ...rest } = status;
  return {
    ...rest,
    answeredBy: nodeId,
    state: role,
    leader: leaderId,
    followers: members.filter((m) => m.voter && !m.leader).map((m) => m.id),
    learners: members.filter((m) => !m.voter).map((m) => m.id),
    logEntries: Math.max(0, status.lastIndex - status.firstIndex + 1),
    snapshotTime: snapshotTimeMs === null ? null : new Date(snapshotTimeMs).toISOString(),
    members,
  };
}

/** 200 when every group did it; otherwise the status of the first failure, with every outcome. */
function sendOutcomes(
  reply: FastifyReply,
  body: { groups: readonly GroupOutcome<unknown>[] } & Record<string, unknown>,
): FastifyReply {
  const failed = body.groups.find((g) => !g.ok);
  const code = failed === undefined || failed.ok ? null : failed.code;
  const status =
    code === null ? 200 : code in errorCatalogue ? errorCatalogue[code as ErrorCode].status : 500;
  return reply.code(status).send(body);
}

function groupParam(text: string, groupCount: number, code: ErrorCode): number {
  const groupId = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(groupId) || groupId >= groupCount) {
    throw new ConclaveError({
      code,
      message: `group must be an integer in [0, ${groupCount}), got ${quote(text)}`,
    });
  }
  return groupId;
}

function nodeParam(text: string | undefined, name: string): string {
  if (text === undefined || text === '') throw badRequest(`missing ${name}: the server to remove`);
  if (text.length > nodeIdCharsMax) throw badRequest(`${name} is longer than ${nodeIdCharsMax} characters`);
  return text;
}
