import { primitivePageEntriesMax } from '@conclave/protocol';
import type { CallOptions } from '../call.js';
import { ConclaveClientError } from '../errors.js';
import type { PrimitiveCaller, PrimitiveTarget, ReadCallOptions } from './caller.js';
import { boolean, fields, integer, list } from './wire.js';

/** Options of an iteration over a map's entries or a set's elements. */
export interface PageOptions extends ReadCallOptions {
  /** Entries per request, 1 to 1000 (default 1000). */
  readonly pageSize?: number;
}

/**
 * Every entry of a partitioned primitive (map, set), group after group, page after page:
 * each page is one read, so memory stays bounded by the page size. It is no snapshot:
 * entries written or removed during the iteration may or may not be seen, but an entry
 * present throughout is seen exactly once.
 */
export async function* pagesOf(options: {
  caller: PrimitiveCaller;
  target: PrimitiveTarget;
  op: 'entries' | 'elements';
  /** The entry's key in its wire form, to resume after it. */
  keyOf: (entry: unknown) => string;
  read: PageOptions;
}): AsyncGenerator<unknown, void, undefined> {
  const { caller, target, op, keyOf, read } = options;
  const limit = read.pageSize ?? primitivePageEntriesMax;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > primitivePageEntriesMax) {
    throw new ConclaveClientError({
      code: 'USAGE',
      message: `pageSize must be an integer from 1 to ${primitivePageEntriesMax}, not ${limit}`,
    });
  }
  const what = `${target.kind} ${op}`;
  // The answer names how many groups there are; until then, group 0 is known to exist.
  let groups = 1;
  for (let group = 0; group < groups; group++) {
    let after: string | undefined;
    for (;;) {
      const args = after === undefined ? { limit } : { after, limit };
      const { result } = await caller.read(target, op, args, { ...read, group });
      const page = fields(result, what);
      groups = integer(page, 'groups', what);
      const entries = list(page, 'entries', what);
      for (const entry of entries) yield entry;
      const last = entries.at(-1);
      if (!boolean(page, 'more', what) || last === undefined) break;
      after = keyOf(last);
    }
  }
}

/** The entry count of a partitioned primitive, summed over the groups. */
export async function sizeOf(caller: PrimitiveCaller, target: PrimitiveTarget, options: CallOptions) {
  const { result } = await caller.read(target, 'size', {}, options);
  return integer(fields(result, `${target.kind} size`), 'size', `${target.kind} size`);
}
