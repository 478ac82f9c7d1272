import { ConclaveError, type ErrorCode, errorCatalogue } from '@conclave/protocol';
import { RaftError, type RaftErrorCode } from '@conclave/raft';

export { ConclaveError, type ErrorCode, errorCatalogue } from '@conclave/protocol';

/**
 * Every code the Raft core can report must have a catalogue entry, because the API answers
 * the core's errors as they are. A code added to the core without one fails this build.
 */
const raftCodesCatalogued: RaftErrorCode extends ErrorCode ? true : never = true;
void raftCodesCatalogued;

/** The catalogue entry for any expected failure, from the core or the server. */
export function describeError(error: RaftError | ConclaveError): {
  code: ErrorCode;
  status: number;
  advice: string;
} {
  const code: ErrorCode = error.code;
  return { code, ...errorCatalogue[code] };
}

export function isExpectedError(error: unknown): error is RaftError | ConclaveError {
  return error instanceof RaftError || error instanceof ConclaveError;
}
