import type { Message } from '@conclave/raft';
import { describe, expect, it } from 'vitest';
import { encodeValue } from './codec.js';
import { coalesceHeartbeats, expandHeartbeats, parseHeartbeatBundle } from './heartbeats.js';
import { envelopesFor } from './testing/harness.js';
import type { Envelope } from './types.js';

function heartbeats(groups: number): Envelope[] {
  const out: Envelope[] = [];
  for (let g = 0; g < groups; g++) {
    const heartbeat: Message = {
      type: 'heartbeat',
      from: 'a',
      to: 'b',
      term: 3 + (g % 5),
      commit: 1000 + g,
      round: 77 + g,
    };
    out.push({ groupId: g, message: heartbeat });
    if (g % 3 === 0) {
      const response: Message = { type: 'heartbeatResp', from: 'a', to: 'b', term: 9, round: g * 31 };
      out.push({ groupId: 5000 + g, message: response });
    }
  }
  return out;
}

describe('coalesceHeartbeats / expandHeartbeats', () => {
  it('fold N heartbeats and responses into one bundle and give them back exactly', () => {
    const input = heartbeats(100);
    const { bundle, rest } = coalesceHeartbeats(input);
    expect(rest).toEqual([]);
    if (bundle === null) throw new Error('expected a bundle');
    expect(bundle.from).toBe('a');
    expect(bundle.to).toBe('b');
    expect(bundle.heartbeats.length).toBe(100 * 4);
    const expanded = expandHeartbeats(bundle);
    const byType = (type: string) => (list: Envelope[]) => list.filter((e) => e.message.type === type);
    // Heartbeats keep their order, then responses keep theirs.
    expect(expanded).toStrictEqual([...byType('heartbeat')(input), ...byType('heartbeatResp')(input)]);
    // It survives the wire, too.
    expect(expandHeartbeats(parseHeartbeatBundle(JSON.parse(JSON.stringify(bundle)), 'b'))).toStrictEqual(
      expanded,
    );
  });

  it('leave other messages, and heartbeats with another from/to, in order in rest', () => {
    const others = envelopesFor('a', 'b', 40).filter(
      (e) => e.message.type !== 'heartbeat' && e.message.type !== 'heartbeatResp',
    );
    const stray: Envelope = {
      groupId: 1,
      message: { type: 'heartbeat', from: 'x', to: 'b', term: 1, commit: 1, round: 1 },
    };
    const mixed = [...others.slice(0, 10), ...heartbeats(5), stray, ...others.slice(10)];
    const { bundle, rest } = coalesceHeartbeats(mixed);
    expect(rest).toStrictEqual([...others.slice(0, 10), stray, ...others.slice(10)]);
    expect(bundle === null ? [] : expandHeartbeats(bundle)).toHaveLength(5 + 2);
    expect(coalesceHeartbeats(others)).toStrictEqual({ bundle: null, rest: others });
  });

  it('are much smaller on the wire than the messages they replace', () => {
    const input = heartbeats(1000);
    const { bundle } = coalesceHeartbeats(input);
    const separate = input.reduce((n, e) => n + encodeValue(e).byteLength, 0);
    const together = encodeValue(bundle).byteLength;
    expect(together * 5).toBeLessThan(separate);
  });
});
