import { defaultLimits as raftLimits } from '@conclave/raft';
import { ConclaveError } from '../errors.js';
import { kvRowBytesOf, snapshotRowBytesMax } from '../fsm/index.js';
import { type ApiLimits, defaultApiLimits } from '../service/types.js';

/** A session id is a UUID: 36 characters. */
const sessionIdChars = 36;

/** The service's ApiLimits plus the body limits only the HTTP layer sees. */
export interface ConsulApiLimits extends ApiLimits {
  /**
   * Largest `/v1/txn` body (bytes). Defaults to what the largest valid transaction can
   * take: its values in base64, plus every key JSON-escaped and each op's framing.
   */
  readonly txnBodyBytesMax: number;
}

/**
 * One txn op in a Raft entry beyond its key's bytes: msgpack's framing of the verb, key,
 * value, flags, index and a session id (about 80 bytes at most), generously.
 */
export const txnOpEntryBytesMax = 128;
/** A txn command's own framing in a Raft entry (version, type, array header). */
const txnCommandEntryBytesMax = 64;

/** Field names, numbers, a session UUID and whitespace of one txn op, generously. */
const txnOpFramingBytes = 512;
/** The longest JSON escape of one byte of a key ("\u0000"). */
const jsonEscapeBytesMax = 6;

export function resolveApiLimits(overrides: Partial<ConsulApiLimits> = {}): ConsulApiLimits {
  const base: ApiLimits = { ...defaultApiLimits, ...overrides };
  const limits: ConsulApiLimits = {
    ...base,
    txnBodyBytesMax:
      overrides.txnBodyBytesMax ??
      Math.ceil(base.kvValueBytesMax / 3) * 4 +
        base.txnOpsMax * (base.kvKeyBytesMax * jsonEscapeBytesMax + txnOpFramingBytes),
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ConclaveError({ code: 'CONFIG_INVALID', message: `${name} must be a positive integer` });
    }
  }
  const largestRow = kvRowBytesOf({
    keyChars: limits.kvKeyBytesMax,
    valueBytes: limits.kvValueBytesMax,
    sessionChars: sessionIdChars,
  });
  if (largestRow > snapshotRowBytesMax) {
    throw new ConclaveError({
      code: 'CONFIG_INVALID',
      message: `kvValueBytesMax plus 3 x kvKeyBytesMax must leave a row within ${snapshotRowBytesMax} bytes (a snapshot part's bound)`,
    });
  }
  // The whole transaction is one Raft entry: the largest one allowed must be proposable,
  // or it would pass every check here and then fail in Raft with PROPOSAL_TOO_LARGE.
  const largestTxn =
    limits.kvValueBytesMax +
    limits.txnOpsMax * (limits.kvKeyBytesMax + txnOpEntryBytesMax) +
    txnCommandEntryBytesMax;
  if (largestTxn > raftLimits.proposalBytesMax) {
    throw new ConclaveError({
      code: 'CONFIG_INVALID',
      message: `the largest transaction, txnOpsMax x (kvKeyBytesMax + ${txnOpEntryBytesMax}) + kvValueBytesMax = ${largestTxn} bytes, must fit one Raft proposal (${raftLimits.proposalBytesMax} bytes): lower txnOpsMax, kvKeyBytesMax or kvValueBytesMax`,
    });
  }
  if (limits.blockingWaitDefaultMs > limits.blockingWaitMaxMs) {
    throw new ConclaveError({
      code: 'CONFIG_INVALID',
      message: 'blockingWaitDefaultMs must not exceed blockingWaitMaxMs',
    });
  }
  return limits;
}
