export { hostEvents } from './host-events.js';
export { metricsUrl, registerMetricsRoutes } from './http-routes.js';
export { type MetricsSummary, summarizeMetrics } from './json-summary.js';
export { type GroupInstruments, Metrics, unmatchedRoute } from './metrics.js';
export { followerLag, type MetricSources } from './scrape-gauges.js';
