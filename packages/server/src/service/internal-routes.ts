import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConclaveError } from '../errors.js';
import { callPackr, msgpackContentType } from './forward-client.js';
import type { LocalGroups } from './local.js';
import { parseGroupCall } from './validate-call.js';

/**
 * `POST /v1/internal/group/:groupId/call`: a peer forwards a group call to this server
 * because it believes this server leads the group. Executed locally only; if leadership
 * moved, the NOT_LEADER answer names the new leader and the peer retries there.
 */
/** The response's close, not the request's: that one fires once the body is read. */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

export function registerInternalRoutes(
  app: FastifyInstance,
  options: { local: LocalGroups; groupCount: number },
): void {
  app.addContentTypeParser(msgpackContentType, { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  app.post<{ Params: { groupId: string } }>('/v1/internal/group/:groupId/call', async (request, reply) => {
    const groupId = Number(request.params.groupId);
    if (!Number.isInteger(groupId) || groupId < 0 || groupId >= options.groupCount) {
      throw new ConclaveError({
        code: 'BAD_REQUEST',
        message: `group must be an integer in [0, ${options.groupCount})`,
      });
    }
    if (!(request.body instanceof Buffer)) {
      throw new ConclaveError({ code: 'BAD_REQUEST', message: `the body must be ${msgpackContentType}` });
    }
    let decoded: unknown;
    try {
      decoded = callPackr.unpack(request.body);
    } catch {
      throw new ConclaveError({ code: 'BAD_REQUEST', message: 'the body is not valid msgpack' });
    }
    const call = parseGroupCall(decoded);
    // A blocking query ends when the peer that forwarded it goes away. Other calls are
    // short and need no signal; not making one saves work on the hot path.
    const blocking = call.kind === 'read' && call.read.block !== null;
    const signal = blocking ? abortOnClose(reply) : undefined;
    const result = await options.local.call({ groupId, call, signal });
    return reply.type(msgpackContentType).send(callPackr.pack(result));
  });
}
