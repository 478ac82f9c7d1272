/**
 * A tiny deterministic key-value state machine, the application the simulated cluster
 * replicates. Commands travel through the Raft log as bytes (JSON; the simulator only
 * needs determinism, not compactness). Each command carries a request id so that the
 * proposer can match an applied result to the client waiting for it, and so that a
 * retried command takes effect once: the machine remembers each client's latest result.
 */

export interface RequestId {
  readonly clientId: string;
  /** Increases by one per new operation of the client; a retry reuses it. */
  readonly seq: number;
}

export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly requestId: RequestId }
  | {
      readonly op: 'cas';
      readonly key: string;
      /** null expects the key to be absent. */
      readonly expected: string | null;
      readonly value: string;
      readonly requestId: RequestId;
    }
  | { readonly op: 'get'; readonly key: string; readonly requestId: RequestId };

export type KvResult =
  | { readonly op: 'put' }
  | { readonly op: 'cas'; readonly ok: boolean; readonly previous: string | null }
  | { readonly op: 'get'; readonly value: string | null };

export type KvApplyOutcome =
  | { readonly kind: 'executed'; readonly result: KvResult }
  | { readonly kind: 'duplicate'; readonly result: KvResult }
  | { readonly kind: 'stale' };

interface Session {
  readonly seq: number;
  readonly result: KvResult;
}

interface SnapshotBody {
  readonly data: [string, string][];
  readonly sessions: [string, Session][];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeCommand(command: KvCommand): Uint8Array {
  // Fixed field order, so equal commands always encode to equal bytes.
  const id = { clientId: command.requestId.clientId, seq: command.requestId.seq };
  switch (command.op) {
    case 'put':
      return encoder.encode(
        JSON.stringify({ op: 'put', key: command.key, value: command.value, requestId: id }),
      );
    case 'cas':
      return encoder.encode(
        JSON.stringify({
          op: 'cas',
          key: command.key,
          expected: command.expected,
          value: command.value,
          requestId: id,
        }),
      );
    case 'get':
      return encoder.encode(JSON.stringify({ op: 'get', key: command.key, requestId: id }));
  }
}

export class KvDecodeError extends Error {
  override readonly name = 'KvDecodeError';
}

export function decodeCommand(bytes: Uint8Array): KvCommand {
  const value: unknown = JSON.parse(decoder.decode(bytes));
  const fail = (why: string): never => {
    throw new KvDecodeError(`bad KV command (${why}): ${decoder.decode(bytes)}`);
  };
  if (!isRecord(value)) return fail('not an object');
  const { op, key, requestId } = value;
  if (typeof key !== 'string') return fail('key');
  if (
    !isRecord(requestId) ||
    typeof requestId.clientId !== 'string' ||
    !Number.isSafeInteger(requestId.seq)
  ) {
    return fail('requestId');
  }
  const id: RequestId = { clientId: requestId.clientId, seq: Number(requestId.seq) };
  switch (op) {
    case 'put':
      if (typeof value.value !== 'string') return fail('value');
      return { op, key, value: value.value, requestId: id };
    case 'cas':
      if (typeof value.value !== 'string') return fail('value');
      if (value.expected !== null && typeof value.expected !== 'string') return fail('expected');
      return { op, key, expected: value.expected, value: value.value, requestId: id };
    case 'get':
      return { op, key, requestId: id };
    default:
      return fail('op');
  }
}

export function sameRequest(a: RequestId, b: RequestId): boolean {
  return a.clientId === b.clientId && a.seq === b.seq;
}

export function formatRequestId(id: RequestId): string {
  return `${id.clientId}#${id.seq}`;
}

export class KvStateMachine {
  readonly #data = new Map<string, string>();
  readonly #sessions = new Map<string, Session>();

  /**
   * Apply a command. A command whose request id the machine has already applied is not
   * executed again: the result it had the first time is returned (exactly-once retries).
   * An older request (a late copy of something the client has moved past) is 'stale'.
   */
  apply(command: KvCommand): KvApplyOutcome {
    const { clientId, seq } = command.requestId;
    const session = this.#sessions.get(clientId);
    if (session !== undefined && seq <= session.seq) {
      return seq === session.seq ? { kind: 'duplicate', result: session.result } : { kind: 'stale' };
    }
    const result = this.#execute(command);
    this.#sessions.set(clientId, { seq, result });
    return { kind: 'executed', result };
  }

  get(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  get size(): number {
    return this.#data.size;
  }

  /** Canonical bytes: keys and sessions sorted, so equal states snapshot to equal bytes. */
  snapshot(): Uint8Array {
    const body: SnapshotBody = {
      data: [...this.#data.entries()].sort(byKey),
      sessions: [...this.#sessions.entries()].sort(byKey),
    };
    return encoder.encode(JSON.stringify(body));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const kv = new KvStateMachine();
    // An empty snapshot is the initial state of a brand-new group.
    if (bytes.byteLength === 0) return kv;
    const body: unknown = JSON.parse(decoder.decode(bytes));
    if (!isRecord(body) || !Array.isArray(body.data) || !Array.isArray(body.sessions)) {
      throw new KvDecodeError('bad KV snapshot');
    }
    for (const pair of body.data as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new KvDecodeError('bad KV snapshot pair');
      }
      kv.#data.set(pair[0], pair[1]);
    }
    for (const pair of body.sessions as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !isSession(pair[1])) {
        throw new KvDecodeError('bad KV snapshot session');
      }
      kv.#sessions.set(pair[0], pair[1]);
    }
    return kv;
  }

  #execute(command: KvCommand): KvResult {
    switch (command.op) {
      case 'put':
        this.#data.set(command.key, command.value);
        return { op: 'put' };
      case 'cas': {
        const previous = this.#data.get(command.key) ?? null;
        const ok = previous === command.expected;
        if (ok) this.#data.set(command.key, command.value);
        return { op: 'cas', ok, previous };
      }
      case 'get':
        return { op: 'get', value: this.#data.get(command.key) ?? null };
    }
  }
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSession(value: unknown): value is Session {
  if (!isRecord(value) || !Number.isSafeInteger(value.seq) || !isRecord(value.result)) return false;
  const r = value.result;
  switch (r.op) {
    case 'put':
      return true;
    case 'cas':
      return typeof r.ok === 'boolean' && (r.previous === null || typeof r.previous === 'string');
    case 'get':
      return r.value === null || typeof r.value === 'string';
    default:
      return false;
  }
}
