import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConclaveError, type ErrorCode, errorCatalogue } from '../errors.js';
import { quote } from './query.js';
import { routeNotFound, sendError } from './send-error.js';

/**
 * Fastify answers some requests itself, before any route or error handler runs, each in
 * its own JSON shape: a URL that does not decode, a path parameter over its length, a
 * request Node's parser refuses (headers too large, a timeout, malformed HTTP), and any
 * request while it closes. These options and hooks send all of them as the catalogue's
 * `{code, message, advice}`, so a client reads every error the same way.
 */
export interface FrameworkErrorOptions {
  /** The largest request line and headers Node reads (bytes); larger ones are answered 431. */
  readonly headerBytesMax: number;
}

/** Options for `Fastify(...)`. */
export function frameworkErrorOptions(options: FrameworkErrorOptions) {
  return {
    http: { maxHeaderSize: options.headerBytesMax },
    frameworkErrors: (error: Error, _request: FastifyRequest, reply: FastifyReply) =>
      sendError(reply, fromRouterError(error)),
    clientErrorHandler: (error: Error, socket: Socket) => answerClientError(error, socket, options),
    // Answered by the onRequest hook of answerErrorsFromCatalogue instead, in the catalogue's shape.
    return503OnClosing: false,
  } as const;
}

/**
 * The app's 404 and error handlers, and a refusal of requests that arrive while it closes
 * (Consul's routes, forwarded calls and all). Call it before any plugin is registered, so
 * its hook reaches the routes of every encapsulated context.
 */
export function answerErrorsFromCatalogue(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    sendError(reply, new ConclaveError({ code: 'SHUTTING_DOWN', message: 'this server is shutting down' }));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, routeNotFound(request)));
  app.setErrorHandler((error, _request, reply) => sendError(reply, error));
}

/** The router's refusals: a path that does not decode, or a path parameter over its length. */
function fromRouterError(error: Error): unknown {
  const code = 'code' in error ? error.code : undefined;
  // Fastify's messages quote the path: "'/v1/kv/%E0%A4%A' is not a valid url component".
  const path = /^'(.*)'/s.exec(error.message)?.[1] ?? '';
  switch (code) {
    case 'FST_ERR_BAD_URL':
      return new ConclaveError({
        code: 'BAD_REQUEST',
        message: `the path ${quote(path)} is not valid percent-encoded UTF-8`,
      });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ConclaveError({
        code: 'BAD_REQUEST',
        message: `a parameter of the path ${quote(path)} is longer than any this route takes`,
      });
    default:
      // FST_ERR_ASYNC_CONSTRAINT: a bug, answered as INTERNAL.
      return error;
  }
}

/**
 * Node's HTTP parser refused the request before fastify saw it: there is only the socket.
 * Answered as Node itself would (then the connection closes), but in the catalogue's shape.
 */
function answerClientError(error: Error, socket: Socket, options: FrameworkErrorOptions): void {
  const code = 'code' in error ? error.code : undefined;
  // A reset or destroyed connection has nobody left to answer.
  if (code === 'ECONNRESET' || socket.destroyed) return;
  const [catalogued, message] = describeClientError(code, options);
  const { status, advice } = errorCatalogue[catalogued];
  const body = JSON.stringify({ code: catalogued, message, advice });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function describeClientError(code: unknown, options: FrameworkErrorOptions): [ErrorCode, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [
        'HEADERS_TOO_LARGE',
        `the request line and headers are larger than httpHeaderBytesMax (${options.headerBytesMax} bytes)`,
      ];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['REQUEST_TIMEOUT', 'the request did not arrive whole in time'];
    default:
      return ['BAD_REQUEST', `the request is not valid HTTP/1.1 (${String(code ?? 'unknown error')})`];
  }
}
