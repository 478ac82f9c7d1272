import type { FastifyInstance } from 'fastify';
import { raftServerJson, sendJson } from './consul-json.js';
import type { ApiContext } from './context.js';
import { badRequest, paramValue, parseUnsigned, queryOf } from './query.js';

/**
 * `/v1/status/leader` and `/v1/status/peers` speak for group 0, the group that holds
 * sessions; `/v1/operator/raft/configuration?group=N` shows any group's servers.
 */
export function registerStatusRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // A JSON string ("" when no leader is known), exactly as Consul answers.
  app.get('/v1/status/leader', async (_request, reply) => sendJson(reply, ctx.service.leaderAddress()));

  app.get('/v1/status/peers', async (_request, reply) => sendJson(reply, ctx.service.peers()));

  app.get('/v1/operator/raft/configuration', async (request, reply) => {
    const groupText = paramValue(queryOf(request), 'group');
    const groupId = groupText === undefined || groupText === '' ? 0 : parseUnsigned(groupText, 'group');
    const groupCount = ctx.service.groupCount();
    if (groupId >= groupCount)
      throw badRequest(`group must be below the group count ${groupCount}, got ${groupId}`);
    const { servers, index } = ctx.service.raftConfiguration({ groupId });
    return sendJson(reply, { Servers: servers.map(raftServerJson), Index: index });
  });
}
