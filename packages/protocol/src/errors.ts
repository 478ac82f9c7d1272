/**
 * The one catalogue of expected failures. Every code the Raft core can report, every code
 * the server adds and every code a client reports maps to an HTTP status and to advice a
 * person can act on. The server checks at compile time that the core's codes are all here.
 */
export const errorCatalogue = {
  // From the Raft core.
  NOT_LEADER: {
    status: 503,
    advice: 'send the request to the leader named in leaderId, or retry once one is elected',
  },
  TRANSFER_IN_PROGRESS: { status: 503, advice: 'retry shortly: leadership is moving to another server' },
  UNCOMMITTED_BYTES_EXCEEDED: { status: 429, advice: 'slow down: too much data awaits commit' },
  PROPOSAL_TOO_LARGE: { status: 413, advice: 'send a smaller value' },
  CONF_CHANGE_PENDING: { status: 409, advice: 'retry after the pending membership change is applied' },
  CONF_CHANGE_INVALID: { status: 400, advice: 'check the server id and the current membership' },
  READ_INDEX_QUEUE_FULL: { status: 429, advice: 'slow down: too many consistent reads are waiting' },
  TRANSFER_TARGET_INVALID: { status: 400, advice: 'name another voter of the group' },
  SNAPSHOT_OUT_OF_DATE: { status: 409, advice: 'a newer snapshot exists; take it again' },
  CONFIG_INVALID: { status: 400, advice: 'fix the named setting' },
  // From the server.
  OVERLOADED: { status: 429, advice: 'slow down: too many requests are waiting on this server' },
  TIMEOUT: { status: 504, advice: 'the outcome is unknown; read the key before retrying a write' },
  SHUTTING_DOWN: { status: 503, advice: 'retry against another server' },
  NO_LEADER: {
    status: 503,
    advice: 'no leader was elected in time; check that a majority of servers is up and connected',
  },
  // A transfer to a voter the group's leader has not heard from recently (down or cut off).
  TRANSFER_TARGET_UNAVAILABLE: {
    status: 409,
    advice:
      'the server named is not answering the group leader: bring it back (or reconnect it), then retry, or name another voter',
  },
  // From the API.
  ROUTE_NOT_FOUND: { status: 404, advice: 'check the method and path against docs/api.md' },
  BAD_REQUEST: { status: 400, advice: 'fix the named parameter and send the request again' },
  BODY_TOO_LARGE: {
    status: 413,
    advice: 'send a smaller body: no valid request to this route is that large; check the route and the body',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    advice:
      'send a valid Content-Type header, such as application/octet-stream for a KV value or application/json for a transaction, or none',
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    advice:
      'send a shorter URL and fewer or smaller headers (many keys belong in one /v1/txn body), or raise the limit on every server with --http-header-bytes-max (config key httpHeaderBytesMax)',
  },
  REQUEST_TIMEOUT: {
    status: 408,
    advice: 'send each request whole, without pausing partway, then retry it',
  },
  KEY_NOT_FOUND: { status: 404, advice: 'check the key; it does not exist (or was deleted)' },
  SESSION_NOT_FOUND: { status: 404, advice: 'create a new session; this one expired or was destroyed' },
  INVALID_SESSION: { status: 400, advice: 'create a session first and pass its ID; this one does not exist' },
  VALUE_TOO_LARGE: {
    status: 413,
    advice:
      'store a smaller value, or raise the limit on every server with --kv-value-bytes-max (config key kvValueBytesMax)',
  },
  TXN_TOO_LARGE: {
    status: 413,
    advice:
      'split the transaction into smaller ones, or raise the limits on every server: --txn-ops-max (config key txnOpsMax) for its operations, --kv-value-bytes-max (config key kvValueBytesMax) for its values together',
  },
  // 507 Insufficient Storage, not 413: the request may be tiny; what is full is the group.
  QUOTA_EXCEEDED: {
    status: 507,
    advice:
      'the group named is full (its bytes or sessions are at the fixed bound of one group, docs/api.md): delete keys or destroy sessions there, or spread keys over more groups with other hash tags; a new cluster can have more groups (--groups, config key groups)',
  },
  TXN_CROSS_GROUP: {
    status: 400,
    advice: 'give the keys one hash tag, e.g. "{app}/a" and "{app}/b", so they live in one group',
  },
  FORWARD_FAILED: { status: 502, advice: 'the leader could not be reached; retry shortly' },
  QUORUM_AT_RISK: {
    status: 409,
    advice:
      'the change would leave the group without a reachable majority of voters: bring the unreachable servers back (or remove them) first',
  },
  // From snapshots (archive/, service/snapshot.ts).
  SNAPSHOT_ARCHIVE_INVALID: {
    status: 400,
    advice:
      'the archive is corrupt, truncated, of another format version or for another cluster shape: take a new snapshot with `conclave snapshot save`',
  },
  RESTORE_FAILED: {
    status: 409,
    advice:
      'nothing was replaced in the group named; retry the restore (another restore may have started meanwhile)',
  },
  SNAPSHOT_CURSOR_GONE: {
    status: 410,
    advice: 'the snapshot was idle too long (or its server restarted): save again',
  },
  RESTORE_IN_PROGRESS: {
    status: 409,
    advice: 'another restore is running on this server: wait for it to finish, then retry',
  },
  // From the coordination primitives (docs/primitives.md).
  PRIMITIVE_UNKNOWN: {
    status: 404,
    advice:
      'check the kind and the operation against docs/primitives.md (kinds: map, set, counter, value, lock, election, semaphore)',
  },
  SESSION_REQUIRED: {
    status: 400,
    advice: 'open a session first (the SDK does) and send its id with the call',
  },
  SESSION_EXPIRED: {
    status: 410,
    advice:
      'open a new session: this one expired or was destroyed, and what it held (locks, permits, candidacies, ephemeral entries) was released',
  },
  REQUEST_EXPIRED: {
    status: 409,
    advice:
      'the server no longer remembers the result of this retried call (its session made many newer calls since): read the state to learn whether it applied',
  },
  VERSION_MISMATCH: {
    status: 409,
    advice: 'read the current version and retry with it, or send the write without a version precondition',
  },
  LOCK_NOT_HELD: {
    status: 409,
    advice:
      'the fence sent does not hold the lock now (it was released, expired or is another lock’s): acquire the lock again',
  },
  LOCK_LOST: {
    status: 409,
    advice:
      'the lock passed to another holder (its session expired): stop using what it guarded, then acquire it again',
  },
  COUNTER_OVERFLOW: {
    status: 409,
    advice: 'keep counters within ±(2^53 - 1): set the counter back, or use a smaller delta',
  },
  INDEX_OUT_OF_RANGE: {
    status: 409,
    advice: 'read the list’s size first: an index must be below it (or equal to it, to insert at the end)',
  },
  NOT_A_CANDIDATE: {
    status: 409,
    advice: 'name a candidate that entered the election (term lists them); withdraw only your own candidacy',
  },
  CANDIDATE_EXISTS: {
    status: 409,
    advice: 'give each candidate its own id, or withdraw the standing one first',
  },
  PERMITS_INVALID: {
    status: 409,
    advice:
      'ask for 1 to the semaphore’s permits (setPermits sets them), and release no more than the session holds',
  },
  // From membership.
  JOIN_FAILED: {
    status: 503,
    advice:
      'check that --join names a running server of this cluster (same --cluster-id) and that a majority of it is up',
  },
  // From `conclave agent` at start (never sent by a server; the status is nominal).
  DATA_DIR_LOCKED: {
    status: 409,
    advice:
      'another conclave agent uses this data dir: stop that process (its pid is named) or give this agent another --data-dir; if the pid named is not a conclave agent, or runs on another host and uses another data dir, delete the lock file named',
  },
  // From the client and the `conclave` CLI (never sent by a server; the status is nominal).
  CONNECTION_FAILED: {
    status: 503,
    advice:
      'check that --http-addr (or CONCLAVE_HTTP_ADDR, else CONSUL_HTTP_ADDR) names a running Conclave server',
  },
  BAD_RESPONSE: {
    status: 502,
    advice: 'check that --http-addr names a Conclave server of a compatible version',
  },
  USAGE: { status: 400, advice: 'run the command with --help to see its arguments and options' },
  // Not an expected failure: a bug. The API answers it so the client is not left hanging.
  INTERNAL: { status: 500, advice: 'this is a bug in the server; report it with the server log' },
} as const satisfies Record<string, { status: number; advice: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class ConclaveError extends Error {
  override readonly name = 'ConclaveError';
  readonly code: ErrorCode;

  constructor(options: { code: ErrorCode; message: string }) {
    super(options.message);
    this.code = options.code;
  }

  get status(): number {
    return errorCatalogue[this.code].status;
  }
}

/** True when `code` names an entry of the catalogue (a newer server may send others). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalogue, code);
}
