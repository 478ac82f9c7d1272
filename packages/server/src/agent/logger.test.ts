import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from './config.js';
import { createAgentLogger, effectiveLogFormat } from './logger.js';

/** A destination that keeps what the logger wrote, synchronously. */
function sink() {
  const written: string[] = [];
  return { written, destination: { write: (text: string) => written.push(text) } };
}

describe('the agent logger', () => {
  it('writes text for people on a terminal and JSON elsewhere, unless the format is set', () => {
    expect(effectiveLogFormat({ format: null, stdoutIsTty: true })).toBe('text');
    expect(effectiveLogFormat({ format: null, stdoutIsTty: false })).toBe('json');
    expect(effectiveLogFormat({ format: 'json', stdoutIsTty: true })).toBe('json');
    expect(effectiveLogFormat({ format: 'text', stdoutIsTty: false })).toBe('text');
  });

  it('writes one readable line per event in text, every field kept, nothing dropped at once', () => {
    const { written, destination } = sink();
    const logger = createAgentLogger({ logLevel: 'info', logFormat: 'text' }, { destination });
    logger
      .child({ component: 'raft' })
      .warn({ group: 2, server: 's3', term: 7, reason: 'gone' }, 'group 2: server s3 removed from the group');
    logger.debug('not at info');
    // Written before warn() returned: nothing waits in a buffer for an exit to lose.
    expect(written).toHaveLength(1);
    const line = written[0] ?? '';
    expect(line).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: raft: group 2: server s3 removed from the group \{.*\}\n$/,
    );
    expect(line).toContain('"group":2,"server":"s3","term":7,"reason":"gone"');
    // No terminal colours into a file or pipe.
    expect(line).not.toContain('\u001b[');
  });

  it('writes pino JSON lines in json', () => {
    const { written, destination } = sink();
    const config = resolveAgentConfig([{ dev: true, logFormat: 'json', logLevel: 'debug' }]);
    createAgentLogger(config, { destination }).debug({ group: 1 }, 'hello');
    expect(written).toHaveLength(1);
    expect(JSON.parse(written[0] ?? '')).toMatchObject({ level: 20, group: 1, msg: 'hello' });
  });
});
