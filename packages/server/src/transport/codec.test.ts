import { describe, expect, it } from 'vitest';
import {
  batchOverheadBytes,
  decodeBody,
  emptyBundleBytesMax,
  encodeBatchFrame,
  encodeEnvelope,
  encodeFrame,
  encodeValue,
  FrameDecoder,
  FrameError,
  FrameType,
  parseBatch,
  parseHello,
  parseWelcome,
} from './codec.js';
import { type HeartbeatBundle, uintBytes } from './heartbeats.js';
import { envelope, ShapeError } from './shape.js';
import { bytesOf, canonical, envelopesFor, everyMessageType } from './testing/harness.js';
import type { Envelope } from './types.js';

function roundTrip(value: unknown): unknown {
  return decodeBody(encodeValue(value));
}

describe('the MessagePack codec', () => {
  it('round-trips every message type exactly, binary as Uint8Array', () => {
    for (let seed = 0; seed < 20; seed++) {
      for (const message of everyMessageType('a', 'b', seed)) {
        const sent: Envelope = { groupId: seed * 1_000_003, message };
        const decoded = envelope(roundTrip(sent), 'envelope');
        expect(decoded).toStrictEqual(sent);
      }
    }
  });

  it('decodes binary as plain Uint8Array, never Buffer, with its own memory', () => {
    const frame = Buffer.from(encodeValue({ data: bytesOf(100, 1) }));
    const decoded = decodeBody(frame) as { data: Uint8Array };
    expect(decoded.data.constructor).toBe(Uint8Array);
    expect(decoded.data).toStrictEqual(bytesOf(100, 1));
    // copyBuffers: the data does not alias the frame it came from.
    expect(decoded.data.buffer).not.toBe(frame.buffer);
    const empty = decodeBody(encodeValue(new Uint8Array(0)));
    expect(empty).toStrictEqual(new Uint8Array(0));
  });

  it('round-trips integers up to 2^53 - 1 as numbers, and plain objects as plain objects', () => {
    for (const n of [
      0,
      1,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 40,
      Number.MAX_SAFE_INTEGER,
    ]) {
      expect(roundTrip(n)).toBe(n);
      expect(encodeValue(n).byteLength).toBe(uintBytes(n));
    }
    const nested = { a: [1, 'x', { b: true, c: null }], d: { e: new Uint8Array([1, 2]) } };
    const decoded = roundTrip(nested);
    expect(decoded).toStrictEqual(nested);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
  });

  it('throws on undecodable bytes and trailing bytes', () => {
    expect(() => decodeBody(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff))).toThrow();
    expect(() => decodeBody(Uint8Array.of(0x01, 0x02))).toThrow();
  });
});

describe('envelope shape checks', () => {
  const good = (): Record<string, unknown> => ({
    groupId: 1,
    message: { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 2, round: 3 },
  });
  const withMessage = (patch: Record<string, unknown>): unknown => ({
    ...good(),
    message: { ...(good().message as object), ...patch },
  });

  it('accepts a good envelope and drops unknown keys', () => {
    const parsed = envelope({ ...good(), extra: 1 }, 'e');
    expect(parsed).toStrictEqual(good());
    expect(envelope(withMessage({ extra: 'x' }), 'e')).toStrictEqual(good());
  });

  it.each([
    ['a negative group id', { ...good(), groupId: -1 }],
    ['a fractional group id', { ...good(), groupId: 1.5 }],
    ['a group id past 2^53', { ...good(), groupId: 2 ** 60 }],
    ['no message', { groupId: 1 }],
    ['an array', [1, 2]],
    ['an unknown type', withMessage({ type: 'bogus' })],
    ['a string term', withMessage({ term: '1' })],
    ['a missing round', withMessage({ round: undefined })],
    ['an invalid node id', withMessage({ from: 'has space' })],
    ['an empty node id', withMessage({ to: '' })],
    ['a map where a number belongs', withMessage({ commit: { n: 1 } })],
  ])('rejects %s', (_what, value) => {
    expect(() => envelope(value, 'e')).toThrow(ShapeError);
  });

  it('rejects entries and snapshot chunks of the wrong shape', () => {
    const app = everyMessageType('a', 'b', 3)[0];
    const snap = everyMessageType('a', 'b', 3).find((m) => m.type === 'snap');
    expect(() =>
      envelope(
        {
          groupId: 0,
          message: { ...app, entries: [{ term: 1, index: 1, type: 9, data: new Uint8Array() }] },
        },
        'e',
      ),
    ).toThrow(ShapeError);
    expect(() =>
      envelope(
        { groupId: 0, message: { ...app, entries: [{ term: 1, index: 1, type: 0, data: [1, 2] }] } },
        'e',
      ),
    ).toThrow(ShapeError);
    expect(() => envelope({ groupId: 0, message: { ...snap, data: 'text' } }, 'e')).toThrow(ShapeError);
    expect(() =>
      envelope(
        {
          groupId: 0,
          message: { ...snap, metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } } },
        },
        'e',
      ),
    ).toThrow(ShapeError);
  });

  it('is not fooled by __proto__ keys or msgpackr extension types from the wire', () => {
    // {"__proto__": {"polluted": 1}} as raw MessagePack
    const proto = Buffer.concat([
      Buffer.from([0x81, 0xa9]),
      Buffer.from('__proto__'),
      Buffer.from([0x81, 0xa8]),
      Buffer.from('polluted'),
      Buffer.from([0x01]),
    ]);
    const decoded = decodeBody(proto);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => envelope(decoded, 'e')).toThrow(ShapeError);
    // A Date (timestamp extension) where a term belongs.
    const withDate = decodeBody(
      encodeValue({ ...good(), message: { ...(good().message as object), term: new Date(0) } }),
    );
    expect(() => envelope(withDate, 'e')).toThrow(ShapeError);
    // 0xc1 is never used by MessagePack; msgpackr yields a marker object for it.
    expect(() => envelope(decodeBody(Uint8Array.of(0xc1)), 'e')).toThrow(ShapeError);
  });

  it('parses a hello and refuses a malformed one', () => {
    const hello = { version: 1, clusterId: 'c', nodeId: 'a', to: 'b' };
    expect(parseHello(roundTrip(hello))).toStrictEqual(hello);
    expect(() => parseHello(roundTrip({ ...hello, clusterId: '' }))).toThrow(ShapeError);
    expect(() => parseHello(roundTrip({ ...hello, version: -1 }))).toThrow(ShapeError);
    expect(() => parseHello(roundTrip('hello'))).toThrow(ShapeError);
  });

  it('reads an empty `to` as an identify hello, and optional addresses only when present', () => {
    const base = { version: 1, clusterId: 'c', nodeId: 'a' };
    expect(parseHello(roundTrip({ ...base, to: '' }))).toStrictEqual({ ...base, to: null });
    const raft = { host: '10.0.0.1', port: 8300 };
    const http = { host: 'db-1.internal', port: 8500 };
    expect(parseHello(roundTrip({ ...base, to: 'b', raft, http, extra: 1 }))).toStrictEqual({
      ...base,
      to: 'b',
      raft,
      http,
    });
    // nil reads as absent: a peer may send the key without a value.
    expect(parseHello(roundTrip({ ...base, to: 'b', http: null }))).toStrictEqual({ ...base, to: 'b' });
    for (const bad of [{ host: '', port: 1 }, { host: 'h', port: 0 }, { host: 'h', port: 65536 }, 'h:1']) {
      expect(() => parseHello(roundTrip({ ...base, to: 'b', raft: bad }))).toThrow(ShapeError);
    }
  });

  it('reads a welcome with or without addresses and the control offer', () => {
    expect(parseWelcome(roundTrip({ version: 1, nodeId: 'b' }))).toStrictEqual({ version: 1, nodeId: 'b' });
    const full = { version: 1, nodeId: 'b', raft: { host: 'h', port: 1 }, http: { host: 'h', port: 2 } };
    expect(parseWelcome(roundTrip({ ...full, control: true }))).toStrictEqual({ ...full, control: true });
    // Anything but true is no offer.
    expect(parseWelcome(roundTrip({ ...full, control: 'yes' }))).toStrictEqual(full);
  });
});

describe('batch frames', () => {
  it('assemble pre-encoded envelopes and a bundle into one decodable MessagePack value', () => {
    const envelopes = envelopesFor('a', 'b', 50).filter((e) => e.message.type !== 'heartbeat');
    const bundle: HeartbeatBundle = {
      from: 'a',
      to: 'b',
      heartbeats: [1, 2, 3, 4, 5, 6, 7, 8],
      responses: [9, 10, 11],
    };
    for (const b of [bundle, null]) {
      const frame = encodeBatchFrame(b, envelopes.map(encodeEnvelope));
      expect(frame.readUInt32BE(0)).toBe(frame.byteLength - 4);
      expect(frame[4]).toBe(FrameType.Batch);
      const batch = parseBatch(decodeBody(frame.subarray(5)));
      expect(batch.envelopes).toStrictEqual(envelopes);
      expect(batch.heartbeats).toStrictEqual(b);
    }
  });

  it('have exactly the size the send queue budgets for', () => {
    const encoded = envelopesFor('a', 'b', 30).map(encodeEnvelope);
    const sum = encoded.reduce((n, e) => n + e.byteLength, 0);
    expect(encodeBatchFrame(null, encoded).byteLength).toBe(batchOverheadBytes + 1 + sum);
    const numbers = [7, 2 ** 40, Number.MAX_SAFE_INTEGER, 300];
    const bundle: HeartbeatBundle = { from: 'node-a', to: 'node-b', heartbeats: numbers, responses: [] };
    const bundleBytes = numbers.reduce((n, x) => n + uintBytes(x), 0);
    expect(encodeValue(bundle).byteLength).toBeLessThanOrEqual(
      emptyBundleBytesMax('node-a', 'node-b') + bundleBytes,
    );
  });
});

describe('FrameDecoder', () => {
  const frames = [
    encodeFrame(FrameType.Hello, encodeValue({ x: 1 })),
    encodeFrame(FrameType.Batch, bytesOf(70_000, 3)),
    encodeFrame(FrameType.Welcome, Uint8Array.of(0xc0)),
  ];
  const stream = Buffer.concat(frames);

  it('reassembles frames split at every possible boundary', () => {
    for (const chunkBytes of [1, 2, 3, 5, 4096, stream.byteLength]) {
      const decoder = new FrameDecoder({ frameBytesMax: 1 << 20 });
      const out: { type: number; body: Uint8Array }[] = [];
      for (let at = 0; at < stream.byteLength; at += chunkBytes) {
        decoder.push(stream.subarray(at, at + chunkBytes));
        for (let f = decoder.next(); f !== null; f = decoder.next())
          out.push({ type: f.type, body: Uint8Array.from(f.body) });
      }
      expect(out.map((f) => f.type)).toEqual([FrameType.Hello, FrameType.Batch, FrameType.Welcome]);
      expect(canonical(out[1]?.body)).toStrictEqual(canonical(bytesOf(70_000, 3)));
    }
  });

  it('refuses an oversized length before buffering the body, and a zero length', () => {
    const decoder = new FrameDecoder({ frameBytesMax: 1024 });
    decoder.push(Buffer.from([0x00, 0x00, 0x04, 0x00])); // 1024 + 4 > 1024
    expect(() => decoder.next()).toThrow(FrameError);
    const zero = new FrameDecoder({ frameBytesMax: 1024 });
    zero.push(Buffer.alloc(4));
    expect(() => zero.next()).toThrow(/length is 0/);
  });
});
