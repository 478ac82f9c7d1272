import type { KvInput, KvOperation, KvOutput } from './kv-model.js';

/** A completed operation. */
export function done(
  clientId: number,
  input: KvInput,
  call: number,
  output: KvOutput,
  ret: number,
): KvOperation {
  return { clientId, input, call, output, return: ret };
}

/** An operation whose client timed out: it may have happened any time after `call`, or never. */
export function lost(clientId: number, input: KvInput, call: number): KvOperation {
  return { clientId, input, call, output: undefined, return: Number.POSITIVE_INFINITY };
}

export const get = (key: string): KvInput => ({ kind: 'get', key });
export const put = (key: string, value: string): KvInput => ({ kind: 'put', key, value });
export const cas = (key: string, expected: string | null, value: string): KvInput => ({
  kind: 'cas',
  key,
  expected,
  value,
});
