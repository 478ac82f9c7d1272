import { RaftError } from '@conclave/raft';
import type { FastifyReply } from 'fastify';
import { ConclaveError, describeError, errorCatalogue, isExpectedError } from '../errors.js';
import { sendJson } from './consul-json.js';

/**
 * The one error responder: `{code, message, advice}` with the catalogue's status, plus
 * `leaderId` when the core names a leader to redirect to. Fastify's own client errors
 * (body too large, malformed request) become catalogue codes too; anything else is a
 * bug: 500 INTERNAL, logged with its stack, never its details sent to the client.
 */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const expected = isExpectedError(error) ? error : fromFrameworkError(error);
  if (expected === null) {
    reply.log.error({ err: error }, 'unexpected error answering an API request');
    const message = 'internal error; see the server log';
    return sendJson(reply, { code: 'INTERNAL', message, advice: errorCatalogue.INTERNAL.advice }, 500);
  }
  const { code, status, advice } = describeError(expected);
  const leaderId = expected instanceof RaftError ? expected.leaderId : null;
  const body = { code, message: expected.message, advice, ...(leaderId === null ? {} : { leaderId }) };
  return sendJson(reply, body, status);
}

/** Fastify reports a body over the route's bodyLimit with this code (status 413). */
export const bodyTooLargeCode = 'FST_ERR_CTP_BODY_TOO_LARGE';

function fromFrameworkError(error: unknown): ConclaveError | null {
  if (typeof error !== 'object' || error === null || !('statusCode' in error)) return null;
  const status = Number(error.statusCode);
  if (!(status >= 400 && status < 500)) return null;
  const message = error instanceof Error ? error.message : 'bad request';
  if ('code' in error && error.code === bodyTooLargeCode) {
    return new ConclaveError({ code: 'VALUE_TOO_LARGE', message: 'the request body is larger than allowed' });
  }
  return new ConclaveError({ code: 'BAD_REQUEST', message });
}
