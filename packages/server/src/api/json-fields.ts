import { badRequest } from './query.js';

/**
 * Reading Consul request bodies the way Go's encoding/json fills a struct: a field matches
 * its name exactly or, failing that, ignoring case; unknown fields are ignored; `null`
 * leaves the field at its zero value (here: absent).
 */
export type JsonObject = Readonly<Record<string, unknown>>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The field's value, or undefined when it is absent or null. */
export function field(object: JsonObject, name: string): unknown {
  let value = Object.hasOwn(object, name) ? object[name] : undefined;
  if (value === undefined) {
    const lower = name.toLowerCase();
    const match = Object.keys(object).find((key) => key.toLowerCase() === lower);
    value = match === undefined ? undefined : object[match];
  }
  return value === null ? undefined : value;
}

export function stringField(object: JsonObject, name: string, where: string): string | undefined {
  const value = field(object, name);
  if (value !== undefined && typeof value !== 'string') throw badRequest(`${where}${name} must be a string`);
  return value;
}

export function unsignedField(object: JsonObject, name: string, where: string): number | undefined {
  const value = field(object, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badRequest(`${where}${name} must be an unsigned integer up to ${Number.MAX_SAFE_INTEGER}`);
  }
  return value;
}

/** Parse a JSON body that arrived as bytes (the API reads every body raw, whatever its Content-Type). */
export function parseJsonBody(body: unknown): unknown {
  if (body === undefined || body === null) return undefined;
  if (!(body instanceof Uint8Array)) {
    throw new Error('the Consul API parses every body as a buffer; a different parser ran');
  }
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`failed to parse body: ${error instanceof Error ? error.message : 'invalid JSON'}`);
  }
}
