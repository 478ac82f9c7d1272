/**
 * `@conclave/protocol`: what a Conclave server and its clients agree on. The one error
 * catalogue, the key-to-group mapping, Go-style durations and the shapes of the wire.
 * It has no dependencies and no Node-only imports, so it also runs in a browser.
 */
export { formatGoDuration, parseGoDuration } from './duration.js';
export { ConclaveError, type ErrorCode, errorCatalogue, isErrorCode } from './errors.js';
export { fnv1a32, fnv1a32Utf8, type GroupId, groupOfKey, hashTag } from './keys.js';
export { type KvVerb, kvVerbs } from './kv.js';
export type { MemberStatus, RemovedServer } from './operator.js';
export {
  candidateIdCharsMax,
  type ElectionTerm,
  electionCandidatesMax,
  isPartitionedKind,
  isPrimitiveKind,
  type LockHolder,
  type OpMode,
  opModeOf,
  type PrimitiveKind,
  type PrimitiveOp,
  partitionedKinds,
  primitiveKeyCharsMax,
  primitiveKinds,
  primitiveNameCharsMax,
  primitiveOps,
  primitivePageEntriesMax,
  primitiveTtlMsMax,
  primitiveTtlMsMin,
  primitiveTxnStepsMax,
  primitiveValuesMax,
  primitiveWaitersMax,
  sessionResultsMax,
  type VersionedBytes,
  wholeKinds,
} from './primitives.js';
