import { badResponse } from '../errors.js';
import type { Codec } from './codec.js';

/**
 * Results checked field by field, as decode.ts checks the KV API's answers: a server of
 * another version fails with BAD_RESPONSE naming the field, never with a TypeError later.
 */
export type Fields = Readonly<Record<string, unknown>>;

export function fields(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badResponse(`${what} is not a JSON object`);
  }
  return value as Fields;
}

export function integer(o: Fields, name: string, what: string): number {
  const value = o[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw badResponse(`${what}.${name} is not an integer`);
  }
  return value;
}

export function integerOrNull(o: Fields, name: string, what: string): number | null {
  return o[name] === null || o[name] === undefined ? null : integer(o, name, what);
}

export function boolean(o: Fields, name: string, what: string): boolean {
  const value = o[name];
  if (typeof value !== 'boolean') throw badResponse(`${what}.${name} is not a boolean`);
  return value;
}

export function textOrNull(o: Fields, name: string, what: string): string | null {
  const value = o[name];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw badResponse(`${what}.${name} is not a string`);
  return value;
}

export function texts(o: Fields, name: string, what: string): string[] {
  const value = o[name];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw badResponse(`${what}.${name} is not a list of strings`);
  }
  return value;
}

export function list(o: Fields, name: string, what: string): readonly unknown[] {
  const value = o[name];
  if (!Array.isArray(value)) throw badResponse(`${what}.${name} is not a list`);
  return value;
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

export function bytes(o: Fields, name: string, what: string): Uint8Array {
  const value = o[name];
  if (typeof value !== 'string' || value.length % 4 !== 0 || !base64Pattern.test(value)) {
    throw badResponse(`${what}.${name} is not base64`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

/** A value and the Raft index of its last write. */
export interface Versioned<V> {
  readonly value: V;
  readonly version: number;
}

/** `{value, version}` decoded with the codec, or null when the wire has null. */
export function versioned<V>(wire: unknown, codec: Codec<V>, what: string): Versioned<V> | null {
  if (wire === null || wire === undefined) return null;
  const o = fields(wire, what);
  return { value: codec.decode(bytes(o, 'value', what)), version: integer(o, 'version', what) };
}
