import { type DestinationStream, type Logger, pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { AgentConfig, LogFormat } from './config.js';

/** The format a setting of null leaves to stdout: text on a terminal, JSON anywhere else. */
export function effectiveLogFormat(options: { format: LogFormat | null; stdoutIsTty: boolean }): LogFormat {
  return options.format ?? (options.stdoutIsTty ? 'text' : 'json');
}

/** How long stopping waits for the log's last lines to reach stdout (a stuck reader must not hang it). */
export const logDrainMsMax = 2_000;

/** Asynchronous destinations of the loggers made here, ended by {@link drainAgentLog}. */
const asyncDestinations = new WeakMap<Logger, ReturnType<typeof pino.destination>>();

/**
 * The agent's logger on stdout, at the configured level and format. JSON lines go through
 * pino's asynchronous destination, the cheapest under load, and one whose reader stalls
 * grows a buffer rather than stalling the server; {@link drainAgentLog} writes out what is
 * in flight before an exit. Text lines are formatted in this thread by pino-pretty's
 * formatter and written synchronously (a worker-thread transport could drop the last lines
 * at an exit): text is for a person at a terminal, not for a busy server's volume.
 */
export function createAgentLogger(
  config: Pick<AgentConfig, 'logLevel' | 'logFormat'>,
  options: { stdoutIsTty?: boolean; destination?: DestinationStream } = {},
): Logger {
  const stdoutIsTty = options.stdoutIsTty ?? process.stdout.isTTY === true;
  const format = effectiveLogFormat({ format: config.logFormat, stdoutIsTty });
  if (format === 'json') {
    if (options.destination !== undefined) return pino({ level: config.logLevel }, options.destination);
    const destination = pino.destination({ dest: 1, sync: false });
    const logger = pino({ level: config.logLevel }, destination);
    asyncDestinations.set(logger, destination);
    return logger;
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

/**
 * Before the process exits: write out every line the logger was given. pino's exit hook
 * writes what is buffered but not a write already in flight, which process.exit() then
 * loses: the last lines, the ones that say how the server stopped. So the destination is
 * ended, and this resolves once it has closed (or after `logDrainMsMax`). Nothing may be
 * logged afterwards. A logger made elsewhere (or writing synchronously) resolves at once.
 */
export async function drainAgentLog(logger: Logger): Promise<void> {
  const destination = asyncDestinations.get(logger);
  if (destination === undefined) return;
  asyncDestinations.delete(logger);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => {
      destination.once('close', () => resolve());
      destination.once('error', () => resolve());
      destination.end();
    }),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, logDrainMsMax);
    }),
  ]);
  clearTimeout(timer);
}
