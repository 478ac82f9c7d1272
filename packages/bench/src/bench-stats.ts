/**
 * Small statistics shared by the HTTP benchmark: percentiles of one cell's latencies, the
 * median over runs, and Conclave/etcd ratios.
 */

/** Nearest-rank percentile of ascending `sorted` values; 0 when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, rank) - 1] ?? 0;
}

/** The median; the mean of the two middle values for an even count; 0 when there are none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? 0) + hi) / 2;
}

/** `a / b` rounded to 2 decimals, or null when b is 0 (no etcd result to compare with). */
export function ratio(a: number, b: number): number | null {
  return b === 0 ? null : round(a / b, 2);
}

export function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}
