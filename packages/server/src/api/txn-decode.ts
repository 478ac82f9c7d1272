import { ConclaveError } from '../errors.js';
import type { KvOp, KvVerb } from '../service/types.js';
import {
  field,
  isJsonObject,
  type JsonObject,
  parseJsonBody,
  stringField,
  unsignedField,
} from './json-fields.js';
import type { ConsulApiLimits } from './limits.js';
import { badRequest, checkKey, checkSessionId, quote } from './query.js';

/** What each verb reads from the op, following Consul's state store (`txnKVS`). */
interface VerbShape {
  readonly value: boolean;
  readonly index: boolean;
  readonly session: boolean;
}

const verbShapes: Readonly<Record<KvVerb, VerbShape>> = {
  set: { value: true, index: false, session: false },
  cas: { value: true, index: true, session: false },
  lock: { value: true, index: false, session: true },
  unlock: { value: true, index: false, session: true },
  get: { value: false, index: false, session: false },
  'get-tree': { value: false, index: false, session: false },
  'check-index': { value: false, index: true, session: false },
  'check-session': { value: false, index: false, session: true },
  'check-not-exists': { value: false, index: false, session: false },
  delete: { value: false, index: false, session: false },
  'delete-tree': { value: false, index: false, session: false },
  'delete-cas': { value: false, index: true, session: false },
};

function isKvVerb(verb: string): verb is KvVerb {
  return Object.hasOwn(verbShapes, verb);
}

/**
 * A `/v1/txn` body (`[{"KV": {...}}, ...]`) as validated ops. Malformed input is a 400
 * naming the op; too many ops, a value over kvValueBytesMax or values adding up to more
 * than it are 413s, as in Consul's `convertOps`.
 */
export function decodeTxn(body: unknown, limits: ConsulApiLimits): KvOp[] {
  const parsed = parseJsonBody(body);
  if (!Array.isArray(parsed)) throw badRequest('the body must be a JSON array of operations');
  if (parsed.length === 0) throw badRequest('a transaction needs at least one operation');
  if (parsed.length > limits.txnOpsMax) {
    throw new ConclaveError({
      code: 'TXN_TOO_LARGE',
      message: `the transaction has ${parsed.length} operations, more than the limit of ${limits.txnOpsMax} (txnOpsMax)`,
    });
  }
  const ops = parsed.map((raw: unknown, opIndex) => decodeOp(raw, { opIndex, limits }));
  const valueBytes = ops.reduce((sum, op) => sum + (op.value?.byteLength ?? 0), 0);
  // Consul bounds the sum too: the whole transaction becomes one Raft entry.
  if (valueBytes > limits.kvValueBytesMax) {
    throw new ConclaveError({
      code: 'TXN_TOO_LARGE',
      message: `the values add up to ${valueBytes} bytes, more than the limit of ${limits.kvValueBytesMax} (kvValueBytesMax)`,
    });
  }
  return ops;
}

function decodeOp(raw: unknown, options: { opIndex: number; limits: ConsulApiLimits }): KvOp {
  const where = `operation ${options.opIndex}: `;
  if (!isJsonObject(raw)) throw badRequest(`${where}must be an object such as {"KV": {...}}`);
  const kv = field(raw, 'KV');
  if (kv === undefined) throw badRequest(`${where}only KV operations are supported`);
  if (!isJsonObject(kv)) throw badRequest(`${where}KV must be an object`);
  const verbText = stringField(kv, 'Verb', where) ?? '';
  if (!isKvVerb(verbText)) throw badRequest(`${where}unknown verb ${quote(verbText)}`);
  const shape = verbShapes[verbText];
  const keyText = stringField(kv, 'Key', where) ?? '';
  if (keyText === '') throw badRequest(`${where}Key is required`);
  const key = checkKey(keyText, {
    keyBytesMax: options.limits.kvKeyBytesMax,
    allowEmpty: false,
    what: `${where}Key`,
  });
  // Read every field so a wrongly typed one is refused even when this verb ignores it.
  const value = decodeValue(kv, { where, key, valueBytesMax: options.limits.kvValueBytesMax });
  const flags = unsignedField(kv, 'Flags', where) ?? 0;
  const index = unsignedField(kv, 'Index', where) ?? 0;
  const session = stringField(kv, 'Session', where) ?? '';
  return {
    verb: verbText,
    key,
    ...(shape.value ? { value, flags } : {}),
    ...(shape.index ? { index } : {}),
    ...(shape.session ? { session: decodeSession(session, { where, verb: verbText }) } : {}),
  };
}

function decodeSession(session: string, options: { where: string; verb: KvVerb }): string {
  if (session === '') throw badRequest(`${options.where}Session is required for ${options.verb}`);
  return checkSessionId(session, `${options.where}Session`);
}

/** Go's StdEncoding: the standard alphabet, padded with '=' to a multiple of 4 characters. */
const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

function isBase64(text: string): boolean {
  return text.length % 4 === 0 && base64Pattern.test(text);
}

function decodeValue(
  kv: JsonObject,
  options: { where: string; key: string; valueBytesMax: number },
): Uint8Array {
  const text = stringField(kv, 'Value', options.where);
  if (text === undefined) return new Uint8Array(0);
  // The text is bounded by the route's body limit (txnBodyBytesMax) before it gets here.
  if (!isBase64(text)) throw badRequest(`${options.where}Value must be base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength > options.valueBytesMax) {
    throw new ConclaveError({
      code: 'VALUE_TOO_LARGE',
      message: `${options.where}the value for key ${quote(options.key)} is ${bytes.byteLength} bytes, more than the limit of ${options.valueBytesMax} (kvValueBytesMax)`,
    });
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
