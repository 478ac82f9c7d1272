import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConclaveError } from '../errors.js';
import type { ConclaveService } from '../service/types.js';
import type { ApiContext } from './context.js';
import { kvUrl, registerKvRoutes } from './kv-routes.js';
import { type ConsulApiLimits, resolveApiLimits } from './limits.js';
import { primitiveUrl, registerPrimitiveRoutes } from './primitive-routes.js';
import { registerPrimitiveStream } from './primitive-stream.js';
import { bodyTooLargeCode, sendError } from './send-error.js';
import { registerSessionRoutes } from './session-routes.js';
import { registerStatusRoutes } from './status-routes.js';
import { registerTxnRoute, txnUrl } from './txn-routes.js';

export { answerErrorsFromCatalogue, frameworkErrorOptions } from './framework-errors.js';
export type { ConsulApiLimits } from './limits.js';
export { resolveApiLimits } from './limits.js';
export { sendError } from './send-error.js';

export interface ConsulApiOptions {
  readonly service: ConclaveService;
  readonly limits?: Partial<ConsulApiLimits>;
  /** In [0, 1); blocking-query jitter. Defaults to Math.random. */
  readonly random?: () => number;
  /** The node a session is created on when its body names none (Consul: the agent's node name). */
  readonly nodeName?: string;
}

/**
 * Consul's HTTP API (KV, txn, sessions, status, operator raft configuration) over a
 * ConclaveService. The routes live in their own fastify context: every body is read raw
 * whatever its Content-Type (Consul ignores it: a KV value is bytes, a txn is JSON), each
 * route has its own body limit, and errors go through `sendError`. Limits are checked
 * here, at registration: a bad limit throws CONFIG_INVALID.
 */
export function registerConsulApi(app: FastifyInstance, options: ConsulApiOptions): void {
  const ctx: ApiContext = {
    service: options.service,
    limits: resolveApiLimits(options.limits),
    random: options.random ?? Math.random,
    nodeName: options.nodeName ?? '',
  };
  app.register(async (api) => {
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    api.setErrorHandler((error, request, reply) => sendError(reply, routeError(error, request, ctx)));
    registerKvRoutes(api, ctx);
    registerTxnRoute(api, ctx);
    registerSessionRoutes(api, ctx);
    registerStatusRoutes(api, ctx);
    registerPrimitiveRoutes(api, ctx);
    await registerPrimitiveStream(api, ctx);
  });
}

/**
 * Fastify refuses a body over the route's limit before the handler runs; on the routes
 * whose limit is a setting, say which, with the code that fits. Other routes' bodies get
 * sendError's BODY_TOO_LARGE.
 */
function routeError(error: unknown, request: FastifyRequest, ctx: ApiContext): unknown {
  const tooLarge =
    typeof error === 'object' && error !== null && 'code' in error && error.code === bodyTooLargeCode;
  if (!tooLarge) return error;
  const { limits } = ctx;
  switch (request.routeOptions.url) {
    case txnUrl:
      return new ConclaveError({
        code: 'TXN_TOO_LARGE',
        message: `the transaction body is larger than ${limits.txnBodyBytesMax} bytes, the most ${limits.txnOpsMax} operations (txnOpsMax) with values of ${limits.kvValueBytesMax} bytes in all (kvValueBytesMax) can take`,
      });
    case primitiveUrl:
      return new ConclaveError({
        code: 'VALUE_TOO_LARGE',
        message: `the body is larger than a value of kvValueBytesMax (${limits.kvValueBytesMax} bytes) can make it`,
      });
    case kvUrl:
      return new ConclaveError({
        code: 'VALUE_TOO_LARGE',
        message: `the value is larger than kvValueBytesMax (${limits.kvValueBytesMax} bytes)`,
      });
    default:
      return error;
  }
}
