import type { FastifyInstance } from 'fastify';
import { kvEntryJson, sendJson } from './consul-json.js';
import type { ApiContext } from './context.js';
import { decodeTxn } from './txn-decode.js';

/** The /v1/txn route, so its body-limit error can be told from a KV value's. */
export const txnUrl = '/v1/txn';

/**
 * `PUT /v1/txn`: all the ops apply or none does. Success is 200 with one result per entry
 * the service reports; a failed check or write is 409 with the errors, as in Consul.
 */
export function registerTxnRoute(app: FastifyInstance, ctx: ApiContext): void {
  app.put(txnUrl, { bodyLimit: ctx.limits.txnBodyBytesMax }, async (request, reply) => {
    const ops = decodeTxn(request.body, ctx.limits);
    const outcome = await ctx.service.txn({ ops });
    if (outcome.ok) {
      return sendJson(reply, {
        Results: outcome.results.map((entry) => ({ KV: kvEntryJson(entry) })),
        Errors: null,
      });
    }
    const errors = outcome.errors.map((error) => ({ OpIndex: error.opIndex, What: error.what }));
    return sendJson(reply, { Results: null, Errors: errors }, 409);
  });
}
