import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError } from '../errors.js';
import { sendJson, sessionJson } from './consul-json.js';
import type { ApiContext } from './context.js';
import { badRequest, checkSessionId, queryOf } from './query.js';
import { parseReadRequest, setReadMeta } from './read-request.js';
import { decodeSessionCreate, sessionBodyBytesMax, sessionTextBytesMax } from './session-decode.js';

type PathRequest = FastifyRequest<{ Params: { '*': string } }>;

export const sessionCreateUrl = '/v1/session/create';

/**
 * `/v1/session/*`, as Consul: create answers `{"ID"}`, destroy `true`, renew the session
 * in a list (404 when it is gone), info/list/node a list that is `[]` when empty.
 */
export function registerSessionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.put(sessionCreateUrl, { bodyLimit: sessionBodyBytesMax }, async (request, reply) => {
    const spec = decodeSessionCreate(request.body, { nodeName: ctx.nodeName });
    const { id } = await ctx.service.sessionCreate(spec);
    return sendJson(reply, { ID: id });
  });

  app.put('/v1/session/destroy/*', async (request: PathRequest, reply) => {
    const id = checkSessionId(request.params['*'], 'session ID');
    // Consul answers true whether or not the session still existed: destroy is idempotent.
    await ctx.service.sessionDestroy({ id });
    return sendJson(reply, true);
  });

  app.put('/v1/session/renew/*', async (request: PathRequest, reply) => {
    const id = checkSessionId(request.params['*'], 'session ID');
    const session = await ctx.service.sessionRenew({ id });
    if (session === null) {
      throw new ConclaveError({ code: 'SESSION_NOT_FOUND', message: `session ${id} not found` });
    }
    return sendJson(reply, [sessionJson(session)]);
  });

  app.get('/v1/session/info/*', async (request: PathRequest, reply) => {
    const read = parseReadRequest(queryOf(request), { ...ctx, reply });
    const id = checkSessionId(request.params['*'], 'session ID');
    const { value: session, meta } = await ctx.service.sessionInfo({ ...read, id });
    setReadMeta(reply, meta);
    return sendJson(reply, session === null ? [] : [sessionJson(session)]);
  });

  app.get('/v1/session/list', (request, reply) => listSessions(ctx, { request, node: null }, reply));

  app.get('/v1/session/node/*', async (request: PathRequest, reply) => {
    const node = request.params['*'];
    if (node === '') throw badRequest('missing node name');
    if (Buffer.byteLength(node) > sessionTextBytesMax) {
      throw badRequest(`node name must be at most ${sessionTextBytesMax} bytes`);
    }
    return listSessions(ctx, { request, node }, reply);
  });
}

async function listSessions(
  ctx: ApiContext,
  options: { request: FastifyRequest; node: string | null },
  reply: FastifyReply,
): Promise<FastifyReply> {
  const read = parseReadRequest(queryOf(options.request), { ...ctx, reply });
  const { value: sessions, meta } = await ctx.service.sessionList({ ...read, node: options.node });
  setReadMeta(reply, meta);
  return sendJson(reply, sessions.map(sessionJson));
}
