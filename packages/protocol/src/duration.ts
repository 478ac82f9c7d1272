/**
 * Go's `time.ParseDuration`, which Consul uses for `?wait`, `?max_stale`, a session's `TTL`
 * and `LockDelay`: a sign, then one or more decimal numbers each with a unit ("300ms",
 * "1h30m", "-1.5s"). A bare number is an error except "0", exactly as in Go, so a client
 * that works against Consul gets the same answer here.
 */

const nanosecondsPerUnit: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  '\u00b5s': 1e3, // micro sign
  '\u03bcs': 1e3, // Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's Duration is an int64 of nanoseconds: anything longer overflows there, so it is refused here. */
const durationNanosecondsMax = 2 ** 63 - 1;

/** One `[0-9]*(\.[0-9]*)?unit` term; the unit runs to the next digit or dot, as in Go. */
const termPattern = /^(\d*)(?:\.(\d*))?([^\d.]*)/;

/** Nanoseconds (possibly fractional), or null when `text` is not a Go duration. */
export function parseGoDuration(text: string): number | null {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return null;
  let total = 0;
  while (rest !== '') {
    const match = termPattern.exec(rest);
    if (match === null) return null;
    const [term, whole = '', fraction, unit = ''] = match;
    // Go needs digits on at least one side of the dot, and a known unit after them.
    if (whole === '' && (fraction === undefined || fraction === '')) return null;
    const scale = nanosecondsPerUnit[unit];
    if (scale === undefined) return null;
    total += Number(`${whole === '' ? '0' : whole}.${fraction ?? '0'}`) * scale;
    rest = rest.slice(term.length);
  }
  if (!Number.isFinite(total) || total > durationNanosecondsMax) return null;
  return sign * total;
}

/** Go's time.Duration.String() for whole milliseconds: "0s", "200ms", "1.5s", "1m40s", "1h0m0s". */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatGoDuration(-ms)}`;
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const secondsMs = ms % 60_000;
  const seconds = `${Math.floor(secondsMs / 1000)}${
    secondsMs % 1000 === 0
      ? ''
      : `.${String(secondsMs % 1000)
          .padStart(3, '0')
          .replace(/0+$/, '')}`
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}
