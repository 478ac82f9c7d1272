import { type DestinationStream, type Logger, pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { AgentConfig, LogFormat } from './config.js';

/** The format a setting of null leaves to stdout: text on a terminal, JSON anywhere else. */
export function effectiveLogFormat(options: { format: LogFormat | null; stdoutIsTty: boolean }): LogFormat {
  return options.format ?? (options.stdoutIsTty ? 'text' : 'json');
}

/**
 * The agent's logger on stdout, at the configured level and format. JSON lines go through
 * pino's own asynchronous destination (flushed on exit), the cheapest under load. Text
 * lines are formatted in this thread by pino-pretty's formatter and written synchronously,
 * so no line is lost when the process exits right after logging (a worker-thread
 * transport could drop the last lines), and a slow terminal cannot grow a buffer.
 */
export function createAgentLogger(
  config: Pick<AgentConfig, 'logLevel' | 'logFormat'>,
  options: { stdoutIsTty?: boolean; destination?: DestinationStream } = {},
): Logger {
  const stdoutIsTty = options.stdoutIsTty ?? process.stdout.isTTY === true;
  const format = effectiveLogFormat({ format: config.logFormat, stdoutIsTty });
  if (format === 'json') {
    return options.destination === undefined
      ? pino({ level: config.logLevel })
      : pino({ level: config.logLevel }, options.destination);
  }
  const prettify = prettyFactory({
    // Colours only for a terminal: escape codes in a file or a pipe are noise.
    colorize: stdoutIsTty && options.destination === undefined,
    translateTime: 'SYS:HH:MM:ss.l',
    // pid and hostname are the same on every line of one process; component leads the message.
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}{component}: {end}{msg}',
    singleLine: true,
  });
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  return pino({ level: config.logLevel }, { write: (line: string) => out.write(prettify(line)) });
}
