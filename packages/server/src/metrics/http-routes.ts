import type { FastifyInstance } from 'fastify';
import { summarizeMetrics } from './json-summary.js';
import { type Metrics, unmatchedRoute } from './metrics.js';

export const metricsUrl = '/v1/agent/metrics';

/**
 * Time every request by route pattern (fastify's routeOptions.url, e.g. `/v1/kv/*`, never
 * the URL: keys must not become label values), and serve the metrics. Call before any
 * route is registered, so the hook covers every route, the Consul API's included.
 */
export function registerMetricsRoutes(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequest({
      route: request.routeOptions.url ?? unmatchedRoute,
      method: request.method,
      statusCode: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
    });
  });

  // `?format=prometheus`: the text exposition format, for Prometheus' scraper. Otherwise
  // a JSON summary shaped like Consul's /v1/agent/metrics (see json-summary.ts).
  app.get<{ Querystring: { format?: string } }>(metricsUrl, async (request, reply) => {
    if (request.query.format === 'prometheus') {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    }
    return summarizeMetrics(metrics.registry);
  });
}
