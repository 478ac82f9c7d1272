import { createHash, type Hash } from 'node:crypto';

/**
 * The run's trace: one compact line per event, folded into a running SHA-256. Two runs
 * with the same seed must produce the same hash; a divergence means something in the
 * world (or the core) is not deterministic. Lines are kept in memory only when asked,
 * since a long run produces millions of them.
 */
export interface TraceLine {
  readonly timeMs: number;
  /** The node the event concerns, or null for world events (faults, checks). */
  readonly node: number | null;
  readonly kind: string;
  readonly summary: string;
}

export class Trace {
  readonly #hash: Hash = createHash('sha256');
  readonly #lines: string[] | null;
  readonly #linesMax: number;
  #count = 0;

  constructor(options: { keepLines: boolean; linesMax?: number }) {
    this.#lines = options.keepLines ? [] : null;
    this.#linesMax = options.linesMax ?? Number.MAX_SAFE_INTEGER;
  }

  record(line: TraceLine): void {
    const text = formatTraceLine(line);
    this.#hash.update(text);
    this.#hash.update('\n');
    this.#count++;
    if (this.#lines !== null && this.#lines.length < this.#linesMax) this.#lines.push(text);
  }

  /** The hash of every line so far; the trace keeps accepting lines afterwards. */
  hash(): string {
    return this.#hash.copy().digest('hex');
  }

  get lineCount(): number {
    return this.#count;
  }

  /** The kept lines, or an empty list when the trace was not asked to keep them. */
  lines(): readonly string[] {
    return this.#lines ?? [];
  }
}

export function formatTraceLine(line: TraceLine): string {
  const node = line.node === null ? '-' : `n${line.node}`;
  const head = `${line.timeMs} ${node} ${line.kind}`;
  return line.summary === '' ? head : `${head} ${line.summary}`;
}
