import { ConclaveError, type ErrorCode, errorCatalogue, isErrorCode } from '@conclave/protocol';

/**
 * A failed client call. Server failures carry the server's own `{code, message, advice}`
 * (and `leaderId` when it names one); failures with no usable answer (connection refused,
 * a timeout, a malformed body) carry a client code and the catalogue's advice.
 */
export class ConclaveClientError extends ConclaveError {
  /** What a person can do about it: the server's advice, else the catalogue's. */
  readonly advice: string;
  /** The HTTP status the server answered with; null when there was no answer. */
  readonly httpStatus: number | null;
  /** The leader a NOT_LEADER answer names, if any. */
  readonly leaderId: string | null;

  constructor(options: {
    code: ErrorCode;
    message: string;
    advice?: string;
    httpStatus?: number | null;
    leaderId?: string | null;
  }) {
    super({ code: options.code, message: options.message });
    this.advice = options.advice ?? errorCatalogue[options.code].advice;
    this.httpStatus = options.httpStatus ?? null;
    this.leaderId = options.leaderId ?? null;
  }
}

export function badResponse(message: string, httpStatus: number | null = null): ConclaveClientError {
  return new ConclaveClientError({ code: 'BAD_RESPONSE', message, httpStatus });
}

/** Client text quoted in a message, cut short so a huge answer cannot make a huge message. */
const quotedCharsMax = 200;

export function excerpt(text: string): string {
  return JSON.stringify(text.length > quotedCharsMax ? `${text.slice(0, quotedCharsMax)}...` : text);
}

/**
 * The error a non-2xx answer stands for. Conclave answers `{code, message, advice}`; any
 * other body (a proxy's page, Consul's plain-text errors) keeps its text in the message.
 */
export function errorFromAnswer(options: { status: number; body: Buffer }): ConclaveClientError {
  const { status, body } = options;
  const text = body.toString('utf8');
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: reported below with the text itself.
  }
  if (typeof parsed === 'object' && parsed !== null && 'code' in parsed && typeof parsed.code === 'string') {
    const message = 'message' in parsed && typeof parsed.message === 'string' ? parsed.message : '';
    const advice = 'advice' in parsed && typeof parsed.advice === 'string' ? parsed.advice : undefined;
    const leaderId = 'leaderId' in parsed && typeof parsed.leaderId === 'string' ? parsed.leaderId : null;
    if (isErrorCode(parsed.code)) {
      return new ConclaveClientError({
        code: parsed.code,
        message,
        ...(advice === undefined ? {} : { advice }),
        httpStatus: status,
        leaderId,
      });
    }
    // A code this client does not know (a newer server): keep it visible in the message.
    return badResponse(`the server answered ${status} ${parsed.code}: ${message}`, status);
  }
  const code: ErrorCode = status === 404 ? 'KEY_NOT_FOUND' : status < 500 ? 'BAD_REQUEST' : 'BAD_RESPONSE';
  return new ConclaveClientError({
    code,
    message: `the server answered ${status}${text === '' ? '' : `: ${excerpt(text.trim())}`}`,
    httpStatus: status,
  });
}
