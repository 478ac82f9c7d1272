import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

/**
 * A simplified form of Consul's `/v1/agent/metrics` JSON: the same top-level arrays, our
 * Prometheus metric names. Counters report their total as both Count and Sum; Samples are
 * the histograms, with Count, Sum and Mean (Min, Max and Stddev are not kept by a
 * Prometheus histogram, so they are left out).
 */
export interface MetricsSummary {
  readonly Timestamp: string;
  readonly Gauges: readonly { Name: string; Value: number; Labels: Labels }[];
  readonly Points: readonly never[];
  readonly Counters: readonly { Name: string; Count: number; Sum: number; Labels: Labels }[];
  readonly Samples: readonly { Name: string; Count: number; Sum: number; Mean: number; Labels: Labels }[];
}

export async function summarizeMetrics(registry: Registry, now: Date = new Date()): Promise<MetricsSummary> {
  const gauges: MetricsSummary['Gauges'][number][] = [];
  const counters: MetricsSummary['Counters'][number][] = [];
  const samples: MetricsSummary['Samples'][number][] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    // prom-client types `type` as a numeric enum, but sets the strings 'gauge', 'counter'...
    const type = String(metric.type);
    if (type === 'gauge') {
      for (const v of metric.values)
        gauges.push({ Name: metric.name, Value: v.value, Labels: stringLabels(v.labels) });
    } else if (type === 'counter') {
      for (const v of metric.values) {
        counters.push({ Name: metric.name, Count: v.value, Sum: v.value, Labels: stringLabels(v.labels) });
      }
    } else if (type === 'histogram') {
      samples.push(...histogramSamples(metric.name, metric.values));
    }
  }
  return { Timestamp: now.toISOString(), Gauges: gauges, Points: [], Counters: counters, Samples: samples };
}

/** Fold a histogram's `_sum` and `_count` series, per label set, into one sample each. */
function histogramSamples(
  name: string,
  values: readonly {
    value: number;
    labels: Record<string, string | number | undefined>;
    metricName?: string;
  }[],
): MetricsSummary['Samples'][number][] {
  const byLabels = new Map<
    string,
    { Name: string; Count: number; Sum: number; Mean: number; Labels: Labels }
  >();
  for (const v of values) {
    const part = v.metricName === `${name}_sum` ? 'sum' : v.metricName === `${name}_count` ? 'count' : null;
    if (part === null) continue;
    const labels = stringLabels(v.labels);
    const key = JSON.stringify(labels);
    let sample = byLabels.get(key);
    if (sample === undefined) {
      sample = { Name: name, Count: 0, Sum: 0, Mean: 0, Labels: labels };
      byLabels.set(key, sample);
    }
    if (part === 'sum') sample.Sum = v.value;
    else sample.Count = v.value;
  }
  for (const sample of byLabels.values()) sample.Mean = sample.Count === 0 ? 0 : sample.Sum / sample.Count;
  return [...byLabels.values()];
}

function stringLabels(labels: Record<string, string | number | undefined>): Labels {
  const out: Labels = {};
  for (const [name, value] of Object.entries(labels))
    if (value !== undefined && name !== 'le') out[name] = String(value);
  return out;
}
