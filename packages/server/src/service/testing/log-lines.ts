import { Writable } from 'node:stream';
import { type Level, type Logger, pino } from 'pino';

/** One JSON log line as pino writes it: numeric `level`, `msg`, and the line's fields. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** pino's numeric levels, as JSON lines carry them. */
export const logLevels = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/**
 * A pino logger at `level` whose JSON lines land in `lines` (`into`, when several loggers
 * share one list), so tests read what operators would.
 */
export function captureLog(
  level: Level = 'info',
  into: LogLine[] = [],
): { logger: Logger; lines: LogLine[] } {
  const lines = into;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n'))
        if (text !== '') lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}
