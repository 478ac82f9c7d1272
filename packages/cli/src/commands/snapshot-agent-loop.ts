import { setTimeout as delay } from 'node:timers/promises';
import { type ConclaveClient, SnapshotClient } from '@conclave/client';
import { ConclaveError } from '@conclave/protocol';
import { LockHolder, type LockTiming } from './lock-holder.js';
import { pruneArchives, saveArchive } from './snapshot-agent-files.js';

/** Time as the agent sees it; tests may drive it. */
export interface AgentClock {
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: AgentClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
};

/** What the agent reports, one event at a time (the command prints them). */
export type AgentEvent =
  | { readonly event: 'waiting'; readonly key: string; readonly holder: string }
  | { readonly event: 'acquired'; readonly key: string; readonly session: string }
  | { readonly event: 'saved'; readonly file: string; readonly bytes: number; readonly index: number }
  | { readonly event: 'removed'; readonly file: string }
  | { readonly event: 'save-failed'; readonly message: string }
  | { readonly event: 'lost'; readonly key: string; readonly reason: string }
  | { readonly event: 'error'; readonly message: string }
  | { readonly event: 'stopped' };

export interface SnapshotAgentOptions {
  readonly client: ConclaveClient;
  readonly dir: string;
  readonly intervalMs: number;
  readonly retain: number;
  readonly lockKey: string;
  /** Aborting stops the agent: it releases the lock and destroys its session. */
  readonly signal: AbortSignal;
  readonly onEvent: (event: AgentEvent) => void;
  readonly clock?: AgentClock;
  readonly lockTiming?: LockTiming;
  /** A label stored as the lock key's value, naming who holds it. */
  readonly holderName: string;
}

/**
 * Rolling snapshots with one active agent among many: each waits for the lock key with a
 * session of its own; the holder saves an archive every interval and prunes to `retain`.
 * When the lock is lost (session gone, key taken) it stops saving and waits again. Errors
 * talking to the server are reported and retried: the agent is meant to run for months.
 * Resolves once `signal` aborts and the lock is released.
 */
export async function runSnapshotAgent(options: SnapshotAgentOptions): Promise<void> {
  const clock = options.clock ?? realClock;
  const retryMs = options.lockTiming?.retryMs ?? 1_000;
  const snapshots = new SnapshotClient(options.client.baseUrl);
  try {
    while (!options.signal.aborted) {
      try {
        await holdAndSave(options, { clock, snapshots });
      } catch (error) {
        if (!(error instanceof ConclaveError)) throw error;
        options.onEvent({ event: 'error', message: `${error.message} (${error.code})` });
        await clock.sleep(retryMs, options.signal);
      }
    }
  } finally {
    await snapshots.close();
    options.onEvent({ event: 'stopped' });
  }
}

/** One term of office: wait for the lock, then save until it is lost or the agent stops. */
async function holdAndSave(
  options: SnapshotAgentOptions,
  deps: { clock: AgentClock; snapshots: SnapshotClient },
): Promise<void> {
  const { client, lockKey: key, signal, onEvent } = options;
  const holder = await LockHolder.create({
    client,
    key,
    value: options.holderName,
    name: `conclave snapshot agent ${key}`,
    ...(options.lockTiming === undefined ? {} : { timing: options.lockTiming }),
  });
  try {
    const acquired = await holder.acquire({
      signal,
      onWaiting: (session) => onEvent({ event: 'waiting', key, holder: session }),
    });
    if (!acquired) return;
    onEvent({ event: 'acquired', key, session: holder.sessionId });
    const lost = new AbortController();
    holder.watch((reason) => {
      onEvent({ event: 'lost', key, reason });
      lost.abort();
    });
    const stop = AbortSignal.any([signal, lost.signal]);
    while (!stop.aborted) {
      const startedMs = deps.clock.now();
      await saveOnce(options, { ...deps, stop });
      const nextMs = startedMs + options.intervalMs - deps.clock.now();
      if (nextMs > 0) await deps.clock.sleep(nextMs, stop);
    }
  } finally {
    await holder.close();
  }
}

/** One archive and the pruning after it; a failure is reported, and the next interval retries. */
async function saveOnce(
  options: SnapshotAgentOptions,
  deps: { clock: AgentClock; snapshots: SnapshotClient; stop: AbortSignal },
): Promise<void> {
  const { dir, onEvent } = options;
  try {
    const saved = await saveArchive({
      client: deps.snapshots,
      dir,
      nowMs: () => deps.clock.now(),
      keep: deps.stop,
    });
    if (saved === null) return;
    onEvent({ event: 'saved', file: saved.name, bytes: saved.bytes, index: saved.index });
    for (const file of await pruneArchives({ dir, retain: options.retain })) {
      onEvent({ event: 'removed', file });
    }
  } catch (error) {
    if (!(error instanceof ConclaveError || isFsError(error))) throw error;
    // A full disk or a cluster without a leader may recover by the next interval.
    onEvent({ event: 'save-failed', message: error instanceof Error ? error.message : String(error) });
  }
}

function isFsError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}
