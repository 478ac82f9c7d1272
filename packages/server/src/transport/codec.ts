import type { NodeId } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { type HeartbeatBundle, parseHeartbeatBundle } from './heartbeats.js';
import { array, envelope, nodeId, object, peerAddress, ShapeError, string, uint } from './shape.js';
import type { Envelope, PeerAddress } from './types.js';

/**
 * The wire format. A frame is
 *
 *     u32 big-endian N | u8 frame type | MessagePack body (N - 1 bytes)
 *
 * so N counts the type byte and the body, and the whole frame is N + 4 bytes.
 * See docs/transport.md.
 */

export const protocolVersion = 1;
/** Versions this build accepts from a dialer; the reject frame lists them. */
export const supportedProtocolVersions: readonly number[] = [protocolVersion];

export const FrameType = {
  /** Dialer → acceptor, first frame: who I am, whom I meant to reach. */
  Hello: 1,
  /** Acceptor → dialer: handshake accepted; batches may follow. */
  Welcome: 2,
  /** Acceptor → dialer: handshake refused, with a typed reason; the acceptor then closes. */
  Reject: 3,
  /** Dialer → acceptor: a batch of envelopes, and maybe a heartbeat bundle. */
  Batch: 4,
  /**
   * Dialer → acceptor, after a welcome that offered `control`: one MessagePack value for the
   * layer above the transport (membership requests), never a Raft message.
   */
  Control: 5,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const frameLengthBytes = 4;
/** Length prefix plus type byte. */
export const frameHeaderBytes = frameLengthBytes + 1;

/**
 * One codec for the whole transport:
 * - `useRecords: false` writes objects as plain MessagePack maps and reads maps back as
 *   plain objects, never msgpackr's record extension, so the bytes are standard MessagePack;
 * - `copyBuffers: true` gives each decoded binary its own memory, so an entry held in the
 *   Raft log does not pin the whole (up to `frameBytesMax`) receive buffer;
 * - `int64AsType: 'number'` reads 64-bit integers as numbers; anything beyond 2^53 then
 *   fails the safe-integer checks in shape.ts instead of arriving as a BigInt;
 * - `structuredClone: false` refuses msgpackr's reference extensions from a peer.
 * Binary is decoded as Uint8Array (not Buffer) because decode always reads from a plain
 * Uint8Array view; see {@link decodeBody}.
 */
export const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: true,
  int64AsType: 'number',
  structuredClone: false,
  moreTypes: false,
});

export function encodeValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decode one MessagePack value that must span `body` exactly; throws on anything else. */
export function decodeBody(body: Uint8Array): unknown {
  // A Buffer input would make msgpackr hand back Buffers (via species); a plain view does not.
  const view = body instanceof Buffer ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : body;
  return packr.unpack(view);
}

export function encodeFrame(type: FrameType, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(frameHeaderBytes + body.byteLength);
  frame.writeUInt32BE(1 + body.byteLength, 0);
  frame[frameLengthBytes] = type;
  frame.set(body, frameHeaderBytes);
  return frame;
}

// ---------------------------------------------------------------------------------------
// Handshake

/**
 * Compatibility within protocol version 1: `raft`, `http` and `control` are optional keys
 * added after the first release. An older parser rebuilds only the keys it knows, so it
 * ignores them; this parser treats them as absent when an older peer leaves them out. Only
 * an identify hello (`to` empty) is new in a way an older acceptor refuses: it answers
 * `malformed`, which the dialer reports as a failed identify. Control frames go only to
 * acceptors whose welcome said `control: true`, so an older one never sees frame type 5.
 */
export interface Hello {
  readonly version: number;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /**
   * The node the dialer meant to reach: catches a peer table pointing at the wrong server.
   * Null (empty on the wire) for an identify dial to a bare address: the acceptor answers
   * with its identity and closes.
   */
  readonly to: NodeId | null;
  /** Where the dialer accepts Raft connections: lets a node it is new to dial it back. */
  readonly raft?: PeerAddress;
  /** The dialer's HTTP API address, if it serves one. */
  readonly http?: PeerAddress;
  /**
   * A random id of the dialing process, new at every start. A server that dials its own
   * address (a `--join` list that names every server, itself included) is told apart from
   * another server claiming its node id by this: only its own welcome carries it back.
   */
  readonly instance?: string;
}

/** Longest `instance` a hello or welcome may carry (characters). */
export const instanceLengthMax = 64;

export interface Welcome {
  readonly version: number;
  readonly nodeId: NodeId;
  readonly raft?: PeerAddress;
  readonly http?: PeerAddress;
  /** The acceptor understands control frames. */
  readonly control?: boolean;
  /** The acceptor process's random id (see {@link Hello.instance}). */
  readonly instance?: string;
}

export const RejectReason = {
  /** The hello frame did not parse. */
  Malformed: 'malformed',
  /** The acceptor speaks none of the dialer's protocol versions. */
  VersionUnsupported: 'versionUnsupported',
  /** The dialer belongs to another cluster. */
  ClusterMismatch: 'clusterMismatch',
  /** The dialer meant to reach another node: its peer table is wrong. */
  WrongNode: 'wrongNode',
  /** The acceptor knows no peer with the dialer's node id. */
  UnknownNode: 'unknownNode',
  /** The dialer claims the acceptor's own node id: two servers share one id. */
  DuplicateNodeId: 'duplicateNodeId',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];
const rejectReasons: ReadonlySet<string> = new Set(Object.values(RejectReason));

export interface Reject {
  readonly reason: RejectReason;
  /** Human-readable, for the dialer's log. */
  readonly detail: string;
  readonly nodeId: NodeId;
  readonly supportedVersions: readonly number[];
}

export const clusterIdLengthMax = 128;
const detailLengthMax = 1024;

export function parseHello(value: unknown): Hello {
  const f = object(value, 'hello');
  const hello = {
    version: uint(f.version, 'hello.version'),
    clusterId: string(f.clusterId, 'hello.clusterId', clusterIdLengthMax),
    nodeId: nodeId(f.nodeId, 'hello.nodeId'),
    to: f.to === '' ? null : nodeId(f.to, 'hello.to'),
  };
  return { ...hello, ...optionalAddresses(f, 'hello'), ...optionalInstance(f, 'hello') };
}

export function parseWelcome(value: unknown): Welcome {
  const f = object(value, 'welcome');
  const welcome = { version: uint(f.version, 'welcome.version'), nodeId: nodeId(f.nodeId, 'welcome.nodeId') };
  return {
    ...welcome,
    ...optionalAddresses(f, 'welcome'),
    ...(f.control === true ? { control: true } : {}),
    ...optionalInstance(f, 'welcome'),
  };
}

/** The `instance` key a hello or welcome may carry; older servers send none. */
function optionalInstance(f: Readonly<Record<string, unknown>>, path: string): { instance?: string } {
  return f.instance === undefined || f.instance === null
    ? {}
    : { instance: string(f.instance, `${path}.instance`, instanceLengthMax) };
}

/** The `raft` and `http` keys a hello or welcome may carry; absent (or nil) ones are left out. */
function optionalAddresses(
  f: Readonly<Record<string, unknown>>,
  path: string,
): { raft?: PeerAddress; http?: PeerAddress } {
  return {
    ...(f.raft === undefined || f.raft === null ? {} : { raft: peerAddress(f.raft, `${path}.raft`) }),
    ...(f.http === undefined || f.http === null ? {} : { http: peerAddress(f.http, `${path}.http`) }),
  };
}

export function parseReject(value: unknown): Reject {
  const f = object(value, 'reject');
  const reason = f.reason;
  if (typeof reason !== 'string' || !rejectReasons.has(reason)) {
    throw new ShapeError('reject.reason must be a reject reason');
  }
  return {
    reason: reason as RejectReason,
    detail: string(f.detail, 'reject.detail', detailLengthMax),
    nodeId: nodeId(f.nodeId, 'reject.nodeId'),
    supportedVersions: array(f.supportedVersions, 'reject.supportedVersions').map((v, i) =>
      uint(v, `reject.supportedVersions[${i}]`),
    ),
  };
}

export function encodeHello(hello: Hello): Buffer {
  return encodeFrame(FrameType.Hello, encodeValue({ ...hello, to: hello.to ?? '' }));
}

export function encodeWelcome(welcome: Welcome): Buffer {
  return encodeFrame(FrameType.Welcome, encodeValue(welcome));
}

export function encodeReject(reject: Reject): Buffer {
  return encodeFrame(
    FrameType.Reject,
    encodeValue({ ...reject, detail: reject.detail.slice(0, detailLengthMax) }),
  );
}

/** A control frame around one MessagePack value. */
export function encodeControlFrame(value: unknown): Buffer {
  return encodeFrame(FrameType.Control, encodeValue(value));
}

// ---------------------------------------------------------------------------------------
// Batches
//
// A batch body is the map { heartbeats: HeartbeatBundle | nil, envelopes: [Envelope...] }.
// Envelopes are encoded one by one when they are queued (so the queue knows their exact
// size and a caller may reuse its objects at once); a flush then writes the map header,
// the keys, an array32 header and the pre-encoded envelopes back to back, which is valid
// MessagePack that decodes as one value.

const mapOfTwo = Uint8Array.of(0x82); // fixmap with 2 entries
const heartbeatsKey = encodeValue('heartbeats');
const envelopesKey = encodeValue('envelopes');
const nil = Uint8Array.of(0xc0);
const array32HeaderBytes = 5;

/** Frame bytes of a batch beyond its envelopes and its bundle (or nil in its place). */
export const batchOverheadBytes =
  frameHeaderBytes +
  mapOfTwo.byteLength +
  heartbeatsKey.byteLength +
  envelopesKey.byteLength +
  array32HeaderBytes;

/** Encode an envelope for the send queue. */
export function encodeEnvelope(value: Envelope): Uint8Array {
  return encodeValue(value);
}

/**
 * An upper bound on the encoded size of a bundle between `from` and `to` that holds no
 * numbers yet; each number then adds its {@link uintBytes}.
 */
export function emptyBundleBytesMax(from: NodeId, to: NodeId): number {
  // The two arrays start as 1-byte fixarray headers and may grow to 5-byte array32 ones.
  const empty: HeartbeatBundle = { from, to, heartbeats: [], responses: [] };
  return encodeValue(empty).byteLength + 2 * (array32HeaderBytes - 1);
}

/** Build one batch frame from a bundle (or null) and pre-encoded envelopes. */
export function encodeBatchFrame(bundle: HeartbeatBundle | null, envelopes: readonly Uint8Array[]): Buffer {
  const bundleBytes = bundle === null ? nil : encodeValue(bundle);
  let bodyBytes =
    mapOfTwo.byteLength +
    heartbeatsKey.byteLength +
    bundleBytes.byteLength +
    envelopesKey.byteLength +
    array32HeaderBytes;
  for (const e of envelopes) bodyBytes += e.byteLength;
  const frame = Buffer.allocUnsafe(frameHeaderBytes + bodyBytes);
  frame.writeUInt32BE(1 + bodyBytes, 0);
  frame[frameLengthBytes] = FrameType.Batch;
  let at = frameHeaderBytes;
  const put = (bytes: Uint8Array): void => {
    frame.set(bytes, at);
    at += bytes.byteLength;
  };
  put(mapOfTwo);
  put(heartbeatsKey);
  put(bundleBytes);
  put(envelopesKey);
  frame[at] = 0xdd; // array32
  frame.writeUInt32BE(envelopes.length, at + 1);
  at += array32HeaderBytes;
  for (const e of envelopes) put(e);
  return frame;
}

export interface Batch {
  readonly heartbeats: HeartbeatBundle | null;
  readonly envelopes: Envelope[];
}

/** Parse a decoded batch body, or throw {@link ShapeError}. */
export function parseBatch(value: unknown): Batch {
  const f = object(value, 'batch');
  const heartbeats = f.heartbeats === null ? null : parseHeartbeatBundle(f.heartbeats, 'batch.heartbeats');
  const envelopes = array(f.envelopes, 'batch.envelopes').map((e, i) => envelope(e, `batch.envelopes[${i}]`));
  return { heartbeats, envelopes };
}

// ---------------------------------------------------------------------------------------
// Reading frames off a byte stream

/** A framing violation: the connection cannot be resynchronised and must be closed. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
}

export interface RawFrame {
  readonly type: number;
  readonly body: Uint8Array;
  /** The whole frame on the wire, prefix included. */
  readonly frameBytes: number;
}

/**
 * Splits a TCP byte stream into frames. A length is checked as soon as its 4 bytes arrive,
 * so an oversized frame is refused before any of its body is buffered. A frame that is
 * not complete yet gets one buffer of its exact size and later chunks are copied straight
 * into it: a frame trickling in a byte per packet costs its size, not an object per byte,
 * and is copied once.
 */
export class FrameDecoder {
  /** Bytes received but not yet part of a frame being assembled (at most a few). */
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The frame being assembled, prefix included, and how much of it has arrived. */
  private assembling: Uint8Array | null = null;
  private assembled = 0;

  /** Raised after the handshake; see `handshakeFrameBytesMax`. */
  frameBytesMax: number;

  constructor(options: { frameBytesMax: number }) {
    this.frameBytesMax = options.frameBytesMax;
  }

  push(chunk: Buffer): void {
    let rest = chunk;
    const frame = this.assembling;
    if (frame !== null) {
      const used = Math.min(frame.byteLength - this.assembled, rest.byteLength);
      frame.set(rest.subarray(0, used), this.assembled);
      this.assembled += used;
      rest = rest.subarray(used);
    }
    if (rest.byteLength === 0) return;
    this.chunks.push(rest);
    this.bufferedBytes += rest.byteLength;
  }

  /** The next complete frame, or null until more bytes arrive. Throws {@link FrameError}. */
  next(): RawFrame | null {
    const frame = this.assembling;
    if (frame !== null) {
      if (this.assembled < frame.byteLength) return null;
      this.assembling = null;
      return toRawFrame(frame);
    }
    if (this.bufferedBytes < frameLengthBytes) return null;
    const length = this.peekLength();
    if (length === 0) throw new FrameError('frame length is 0: a frame holds at least its type byte');
    const frameBytes = frameLengthBytes + length;
    if (frameBytes > this.frameBytesMax) {
      throw new FrameError(`frame of ${frameBytes} bytes exceeds the limit of ${this.frameBytesMax} bytes`);
    }
    if (this.bufferedBytes >= frameBytes) return toRawFrame(this.take(frameBytes));
    // Incomplete: everything buffered belongs to this frame; assemble it in place from now on.
    const partial = new Uint8Array(frameBytes);
    let at = 0;
    for (const chunk of this.chunks) {
      partial.set(chunk, at);
      at += chunk.byteLength;
    }
    this.chunks.length = 0;
    this.bufferedBytes = 0;
    this.assembling = partial;
    this.assembled = at;
    return null;
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first !== undefined && first.byteLength >= frameLengthBytes) return first.readUInt32BE(0);
    // The prefix straddles chunks (at most 3 bytes in the first one): merge them.
    const merged = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.chunks.push(merged);
    return merged.readUInt32BE(0);
  }

  /** Remove and return the first `n` buffered bytes (all present) as a plain Uint8Array. */
  private take(n: number): Uint8Array {
    this.bufferedBytes -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return new Uint8Array(first.buffer, first.byteOffset, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let used = 0; // whole chunks consumed, removed in one splice
    for (const chunk of this.chunks) {
      const part = Math.min(chunk.byteLength, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part < chunk.byteLength) {
        this.chunks[used] = chunk.subarray(part);
        break;
      }
      used++;
      if (filled === n) break;
    }
    this.chunks.splice(0, used);
    return out;
  }
}

function toRawFrame(frame: Uint8Array): RawFrame {
  return {
    type: frame[frameLengthBytes] ?? 0,
    body: frame.subarray(frameHeaderBytes),
    frameBytes: frame.byteLength,
  };
}
