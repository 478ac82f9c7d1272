import { RaftInvariantError } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { deliverMessages } from './transport.js';

describe('deliverMessages', () => {
  const logged: string[] = [];
  const logger = { error: (_fields: object, message: string) => void logged.push(message) };

  it('logs a host error and goes on, so one bad batch does not drop the connection', () => {
    const onMessages = () => {
      throw new Error('host bug');
    };
    expect(() =>
      deliverMessages({ onMessages, logger: logger as never, from: 'a', envelopes: [] }),
    ).not.toThrow();
    expect(logged.at(-1)).toMatch(/onMessages threw on 0 messages from node a: host bug/);
  });

  it('lets a broken Raft invariant through, so the process stops instead of serving from a bad state', () => {
    const onMessages = () => {
      throw new RaftInvariantError('commit 4432 is past the last index 0');
    };
    const before = logged.length;
    expect(() => deliverMessages({ onMessages, logger: logger as never, from: 'a', envelopes: [] })).toThrow(
      RaftInvariantError,
    );
    expect(logged.length).toBe(before);
  });
});
