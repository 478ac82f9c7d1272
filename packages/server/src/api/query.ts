import type { FastifyRequest } from 'fastify';
import { ConclaveError } from '../errors.js';

/**
 * Query-string parsing with Consul's rules: a flag counts when present, whatever its value
 * (`?recurse`, `?recurse=false` alike); a repeated parameter takes its first value (Go's
 * `url.Values.Get`); parameters nobody reads are ignored.
 */
export type Query = Readonly<Record<string, string | readonly string[] | undefined>>;

export function queryOf(request: FastifyRequest): Query {
  const query = request.query;
  return typeof query === 'object' && query !== null ? (query as Query) : {};
}

export function hasParam(query: Query, name: string): boolean {
  return Object.hasOwn(query, name);
}

export function paramValue(query: Query, name: string): string | undefined {
  const value = hasParam(query, name) ? query[name] : undefined;
  return typeof value === 'string' ? value : value?.[0];
}

export function badRequest(message: string): ConclaveError {
  return new ConclaveError({ code: 'BAD_REQUEST', message });
}

/** Client text echoed in an error, cut short so a huge parameter cannot make a huge answer. */
const quotedCharsMax = 80;

export function quote(text: string): string {
  return JSON.stringify(text.length > quotedCharsMax ? `${text.slice(0, quotedCharsMax)}...` : text);
}

/** Go's strconv.ParseUint(text, 10, 64), bounded to what a JS number holds exactly. */
export function parseUnsigned(text: string, name: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw badRequest(
      `${name} must be an unsigned integer up to ${Number.MAX_SAFE_INTEGER}, got ${quote(text)}`,
    );
  }
  return value;
}

/** An unsigned integer parameter, null when absent. Present but empty is an error, as in Consul. */
export function unsignedParam(query: Query, name: string): number | null {
  const text = paramValue(query, name);
  return text === undefined ? null : parseUnsigned(text, name);
}

/** Consul refuses requests naming more than one of these flags (`conflictingFlags`). */
export function refuseConflicting(query: Query, names: readonly string[]): void {
  const present = names.filter((name) => hasParam(query, name));
  if (present.length > 1) throw badRequest(`conflicting flags: ${present.join(', ')} cannot be combined`);
}

/**
 * Where the first C0 control (U+0000-U+001F) or DEL (U+007F) is, or -1: characters
 * invisible in logs, terminals and `conclave kv get` output.
 */
function controlCharacterIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) return i;
  }
  return -1;
}

/**
 * A KV key or prefix from the URL or a txn op. Consul never stores a key beginning with
 * '/' (its router cleans `//` out of paths and its Go client refuses such keys), so one is
 * refused rather than silently stored under a name Consul could not read. Control
 * characters are refused too: a key holding NUL or a newline prints like another key, and
 * many tools cut strings at NUL.
 */
export function checkKey(
  key: string,
  options: { keyBytesMax: number; allowEmpty: boolean; what: string },
): string {
  if (key === '' && !options.allowEmpty) throw badRequest(`missing ${options.what}`);
  const bytes = Buffer.byteLength(key);
  if (bytes > options.keyBytesMax) {
    throw badRequest(
      `${options.what} is ${bytes} bytes, more than the limit of ${options.keyBytesMax} (kvKeyBytesMax)`,
    );
  }
  if (key.startsWith('/')) throw badRequest(`${options.what} must not begin with '/': ${quote(key)}`);
  const control = controlCharacterIndex(key);
  if (control >= 0) {
    const codePoint = `U+${key.charCodeAt(control).toString(16).toUpperCase().padStart(4, '0')}`;
    throw badRequest(
      `${options.what} holds the control character ${codePoint} at character ${control}: keys may not hold U+0000-U+001F or U+007F`,
    );
  }
  return key;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Session IDs are UUIDs; anything else cannot name a session, so it is refused before any lookup. */
export function checkSessionId(id: string, what: string): string {
  if (id === '') throw badRequest(`missing ${what}`);
  if (!uuidPattern.test(id)) throw badRequest(`${what} must be a UUID, got ${quote(id)}`);
  return id;
}

/** A session ID parameter (`?acquire=`, `?release=`), null when absent. */
export function sessionParam(query: Query, name: string): string | null {
  const text = paramValue(query, name);
  return text === undefined ? null : checkSessionId(text, name);
}
