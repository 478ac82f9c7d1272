import { ConclaveClientError } from '../errors.js';

/**
 * How values become the bytes the server stores, and back. Map values and registers
 * (`cv.value`) go through one; map keys, set elements and candidate ids are strings as
 * they are.
 */
export interface Codec<V> {
  encode(value: V): Uint8Array;
  /** Throwing here fails the call that read the bytes with the codec's error. */
  decode(bytes: Uint8Array): V;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The default codec: JSON text in UTF-8. A handle's type parameter is taken on trust when
 * decoding, as with JSON.parse: give a handle its own codec to check what it reads.
 */
export const jsonCodec: Codec<unknown> = {
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new ConclaveClientError({
        code: 'USAGE',
        message: `${typeof value} has no JSON form: store null, or give the handle a codec`,
      });
    }
    return encoder.encode(text);
  },
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
};

/** Bytes as they are, for callers who encode values themselves. */
export const bytesCodec: Codec<Uint8Array> = {
  encode: (value) => value,
  decode: (bytes) => bytes,
};

/** UTF-8 text as it is. */
export const textCodec: Codec<string> = {
  encode: (value) => encoder.encode(value),
  decode: (bytes) => decoder.decode(bytes),
};
