import type { ConclaveFsm } from '../fsm/index.js';
import type { GroupQuery } from './calls.js';

type WatchSpec = Parameters<ConclaveFsm['watch']>[0];

/** What a query saw, the index it reports and what to watch to learn it changed. */
export interface Evaluation {
  readonly value: unknown;
  readonly index: number;
  readonly watch: WatchSpec;
}

/**
 * Run a query against a group's applied state. The index is the last change of the table
 * the query reads (as Consul does), so it only grows, and a query whose result lost a key
 * still sees a larger index. It is never 0: Consul clients treat 0 as "no blocking".
 */
export function evaluate(fsm: ConclaveFsm, query: GroupQuery): Evaluation {
  switch (query.kind) {
    case 'get':
      return { value: fsm.getKey(query.key), index: atLeastOne(fsm.kvIndex()), watch: { keys: [query.key] } };
    case 'list':
      return {
        value: fsm.list(query.prefix),
        index: atLeastOne(fsm.kvIndex()),
        watch: { prefixes: [query.prefix] },
      };
    case 'keys':
      return {
        value: fsm.keys({ prefix: query.prefix, separator: query.separator }),
        index: atLeastOne(fsm.kvIndex()),
        watch: { prefixes: [query.prefix] },
      };
    case 'session':
      return {
        value: fsm.getSession(query.id),
        index: atLeastOne(fsm.sessionIndex()),
        watch: { sessions: true },
      };
    case 'sessions':
      return {
        value: fsm.listSessions({ node: query.node }),
        index: atLeastOne(fsm.sessionIndex()),
        watch: { sessions: true },
      };
    case 'primitive': {
      const read = fsm.primitive(query.read);
      // A row's version only grows while it exists; without one (a gather, an absent row)
      // the table's index stands in: it passed every version a deleted row ever had.
      const index = read.watchKey !== null && read.version > 0 ? read.version : fsm.kvIndex();
      const watch =
        read.watchKey !== null ? { keys: [read.watchKey] } : { prefixes: [read.watchPrefix ?? ''] };
      return { value: read.value, index: atLeastOne(index), watch };
    }
    case 'primitive-events': {
      const { events, compacted, watchKey, watchPrefix } = fsm.primitiveEvents(query.read);
      // Blocks (index <= after) until a change arrives; a compacted stream answers at once.
      // Not raised to 1: a stream from version 0 must wait for its first change too.
      const last = events.at(-1)?.version ?? query.read.after;
      const index = compacted ? Math.max(fsm.appliedIndex(), query.read.after + 1) : last;
      const watch = watchKey !== null ? { keys: [watchKey] } : { prefixes: [watchPrefix ?? ''] };
      return { value: { events, compacted }, index, watch };
    }
    case 'autopilot-config': {
      // Nothing watches the settings: a blocking read of them just waits out its time.
      const stored = fsm.autopilot();
      return { value: stored, index: atLeastOne(stored?.modifyIndex ?? 0), watch: {} };
    }
  }
}

/**
 * A blocking query: evaluate, and while the index has not passed `afterIndex`, wait for a
 * watch on what the query read to fire, then evaluate again. Ends at the deadline (with the
 * current, unchanged result) or when `signal` aborts (the caller went away).
 */
export async function evaluateBlocking(options: {
  fsm: ConclaveFsm;
  query: GroupQuery;
  afterIndex: number;
  waitMs: number;
  signal?: AbortSignal | undefined;
}): Promise<Evaluation> {
  const { fsm, query, afterIndex, signal } = options;
  const deadlineMs = Date.now() + options.waitMs;
  let evaluation = evaluate(fsm, query);
  while (evaluation.index <= afterIndex && !(signal?.aborted ?? false)) {
    const remainingMs = deadlineMs - Date.now();
    if (remainingMs <= 0) break;
    // Registered synchronously after evaluate(): no apply can slip in between.
    await waitForWatch({ fsm, watch: evaluation.watch, timeoutMs: remainingMs, signal });
    evaluation = evaluate(fsm, query);
  }
  return evaluation;
}

function waitForWatch(options: {
  fsm: ConclaveFsm;
  watch: WatchSpec;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}): Promise<void> {
  const { fsm, watch, timeoutMs, signal } = options;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = fsm.watch(watch, done);
    const timer = setTimeout(done, timeoutMs);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function atLeastOne(index: number): number {
  return Math.max(1, index);
}
