import { RaftError } from '@conclave/raft';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError, describeError, errorCatalogue, isExpectedError } from '../errors.js';
import { sendJson } from './consul-json.js';

/**
 * The one error responder: `{code, message, advice}` with the catalogue's status, plus
 * `leaderId` when the core names a leader to redirect to. Fastify's own client errors
 * (body too large, malformed request) become catalogue codes too; anything else is a
 * bug: 500 INTERNAL, logged with its stack, never its details sent to the client.
 */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const expected = isExpectedError(error) ? error : fromFrameworkError(error, reply.request);
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

/** The answer to a request no route takes, whatever else is wrong with it. */
export function routeNotFound(request: FastifyRequest): ConclaveError {
  return new ConclaveError({
    code: 'ROUTE_NOT_FOUND',
    message: `no route ${request.method} ${request.url.split('?')[0]}`,
  });
}

/**
 * Fastify's own refusals (each a 4xx with a FST_ERR_* code, or a body parser's
 * SyntaxError with a statusCode) as catalogue errors whose message says what was wrong.
 */
function fromFrameworkError(error: unknown, request: FastifyRequest): ConclaveError | null {
  if (typeof error !== 'object' || error === null || !('statusCode' in error)) return null;
  const status = Number(error.statusCode);
  if (!(status >= 400 && status < 500)) return null;
  // A 404's body is still read (and refused when too large); the missing route matters more.
  if (request.is404) return routeNotFound(request);
  const code = 'code' in error ? error.code : undefined;
  const detail = error instanceof Error ? error.message : 'bad request';
  switch (code) {
    case bodyTooLargeCode:
      return new ConclaveError({
        code: 'BODY_TOO_LARGE',
        message: `the request body is larger than ${request.routeOptions.bodyLimit} bytes, the most ${request.method} ${request.routeOptions.url ?? request.url} takes`,
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ConclaveError({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: `the Content-Type header ${JSON.stringify(request.headers['content-type'] ?? '')} is not a media type this route reads`,
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ConclaveError({
        code: 'BAD_REQUEST',
        message: 'the request body is not as long as its Content-Length header says',
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ConclaveError({ code: 'BAD_REQUEST', message: 'the body is empty; this route needs JSON' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ConclaveError({ code: 'BAD_REQUEST', message: 'the body is not valid JSON' });
    default:
      return new ConclaveError({ code: 'BAD_REQUEST', message: detail });
  }
}
