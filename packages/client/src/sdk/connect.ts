import { ConclaveClient } from '../client.js';
import { ConclaveClientError } from '../errors.js';
import { PrimitiveCaller } from './caller.js';
import { type Codec, jsonCodec } from './codec.js';
import { ConclaveCounter } from './counter.js';
import { ConclaveElection } from './election.js';
import { ConclaveIndexedMap } from './indexed-map.js';
import { ConclaveList } from './list.js';
import { ConclaveLock } from './lock.js';
import { ConclaveMap } from './map.js';
import { ConclaveMultimap } from './multimap.js';
import { ConclaveSemaphore } from './semaphore.js';
import { ConclaveSession } from './session.js';
import { ConclaveSet } from './set.js';
import { LocalTurns } from './turns.js';
import { ConclaveValue } from './value.js';

export interface ConnectOptions {
  /** Servers of one cluster (`host:port` or `http://host:port`); calls fail over between them. */
  readonly servers: readonly string[];
  /**
   * The session's TTL, ms: whole seconds from 10 s to 24 h (default 15 s). The SDK renews
   * it every TTL/3; the server ends it 2×TTL after the last renewal it saw. The SDK gives
   * it up itself after one TTL without a successful renewal (see ConclaveSession).
   */
  readonly sessionTtlMs?: number;
  /** The session's name, shown by `/v1/session/list` (default "conclave-sdk"). */
  readonly sessionName?: string;
  /** How values of maps and registers become bytes (default: JSON). Handles may take their own. */
  readonly codec?: Codec<unknown>;
  /** Attempts of one call, the first included, across all servers (default 10). */
  readonly retryAttemptsMax?: number;
  /** The backoff after each round of failed attempts over every server, doubling, ms (default 200). */
  readonly retryBackoffMs?: number;
  /** The longest backoff, ms (default 2000). */
  readonly retryBackoffMsMax?: number;
  /** One attempt of a call that does not block, ms (default 15000). */
  readonly requestTimeoutMs?: number;
}

export const connectDefaults = {
  sessionTtlMs: 15_000,
  sessionName: 'conclave-sdk',
  retryAttemptsMax: 10,
  retryBackoffMs: 200,
  retryBackoffMsMax: 2_000,
  requestTimeoutMs: 15_000,
} as const;

/** Consul's bounds on a session TTL. */
const sessionTtlMsMin = 10_000;
const sessionTtlMsMax = 24 * 60 * 60_000;

/**
 * A connection to a Conclave cluster and its coordination primitives. Nothing is sent
 * until a handle is used: the session opens with the first call that needs it. Close it
 * (or `await using`) to destroy the session, which releases its locks, permits,
 * candidacies and ephemeral entries at once rather than at its TTL.
 */
export function connect(options: ConnectOptions): Conclave {
  return new Conclave(options);
}

export class Conclave implements AsyncDisposable {
  /** The HTTP client underneath, for the KV API and the operator endpoints. */
  readonly client: ConclaveClient;
  /** The connection's session: its id, and its 'open' and 'lost' events. */
  readonly session: ConclaveSession;
  private readonly caller: PrimitiveCaller;
  private readonly codec: Codec<unknown>;
  private readonly lockTurns = new Map<string, LocalTurns>();
  private readonly semaphoreTurns = new Map<string, LocalTurns>();
  /** The one closing, which every close() call waits for. */
  private closing: Promise<void> | null = null;

  constructor(options: ConnectOptions) {
    const settings = { ...connectDefaults, ...options };
    const ttlMs = settings.sessionTtlMs;
    if (
      !Number.isSafeInteger(ttlMs) ||
      ttlMs % 1000 !== 0 ||
      ttlMs < sessionTtlMsMin ||
      ttlMs > sessionTtlMsMax
    ) {
      throw new ConclaveClientError({
        code: 'CONFIG_INVALID',
        message: `sessionTtlMs must be whole seconds from ${sessionTtlMsMin} to ${sessionTtlMsMax} ms, not ${ttlMs}`,
      });
    }
    this.client = new ConclaveClient({
      addresses: options.servers,
      limits: {
        attemptsMax: settings.retryAttemptsMax,
        retryDelayMs: settings.retryBackoffMs,
        retryDelayMaxMs: settings.retryBackoffMsMax,
        requestTimeoutMs: settings.requestTimeoutMs,
      },
    });
    this.session = new ConclaveSession(this.client, { ttlMs, name: settings.sessionName });
    this.caller = new PrimitiveCaller(this.client, this.session);
    this.codec = options.codec ?? jsonCodec;
  }

  /** A map of string keys to values of type V (the connection's codec unless one is given). */
  map<V = unknown>(name: string, options: { readonly codec?: Codec<V> } = {}): ConclaveMap<V> {
    return new ConclaveMap(this.caller, name, options.codec ?? (this.codec as Codec<V>));
  }

  /** A multimap: string keys, each with a set of values of type V, spread over the groups. */
  multimap<V = unknown>(name: string, options: { readonly codec?: Codec<V> } = {}): ConclaveMultimap<V> {
    return new ConclaveMultimap(this.caller, name, options.codec ?? (this.codec as Codec<V>));
  }

  /** A list of values of type V, wholly in one group (at most 1,024 items). */
  list<V = unknown>(name: string, options: { readonly codec?: Codec<V> } = {}): ConclaveList<V> {
    return new ConclaveList(this.caller, name, options.codec ?? (this.codec as Codec<V>));
  }

  /** A map that keeps the order of its appends, wholly in one group (at most 1,024 entries). */
  indexedMap<V = unknown>(name: string, options: { readonly codec?: Codec<V> } = {}): ConclaveIndexedMap<V> {
    return new ConclaveIndexedMap(this.caller, name, options.codec ?? (this.codec as Codec<V>));
  }

  set(name: string): ConclaveSet {
    return new ConclaveSet(this.caller, name);
  }

  counter(name: string): ConclaveCounter {
    return new ConclaveCounter(this.caller, name);
  }

  /** A register holding one value of type V (the connection's codec unless one is given). */
  value<V = unknown>(name: string, options: { readonly codec?: Codec<V> } = {}): ConclaveValue<V> {
    return new ConclaveValue(this.caller, name, options.codec ?? (this.codec as Codec<V>));
  }

  /** A lock. Handles of one name share this connection's line, so its callers exclude each other too. */
  lock(name: string): ConclaveLock {
    return new ConclaveLock(this.caller, name, () => turnsOf(this.lockTurns, name));
  }

  election(name: string): ConclaveElection {
    return new ConclaveElection(this.caller, name);
  }

  semaphore(name: string): ConclaveSemaphore {
    return new ConclaveSemaphore(this.caller, name, () => turnsOf(this.semaphoreTurns, name));
  }

  /**
   * Destroys the session (its holds pass on at once) and closes the connections. Handles
   * bound to the session end; calls made afterwards fail with USAGE. Closing again waits
   * for the first closing.
   */
  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.session.close();
      await this.client.close();
    })();
    await this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The turns of one name, made on first use and forgotten when idle (names are unbounded). */
function turnsOf(all: Map<string, LocalTurns>, name: string): LocalTurns {
  let turns = all.get(name);
  if (turns === undefined) {
    const made = new LocalTurns(() => {
      if (all.get(name) === made) all.delete(name);
    });
    all.set(name, made);
    turns = made;
  }
  return turns;
}
