import type { Entry, LogStorage, Snapshot } from '@conclave/raft';
import type { LogView } from './checkers.js';

/**
 * A node's log as the core sees it: the durable storage overlaid with a Ready's unpersisted
 * snapshot and entries (which replace any conflicting suffix of storage).
 */
export function overlayLogView(options: {
  storage: LogStorage;
  snapshot: Snapshot | null;
  entries: readonly Entry[];
}): LogView {
  const { storage, snapshot, entries } = options;
  const first = entries[0];
  const last = entries[entries.length - 1];
  const snapIndex = snapshot?.metadata.index ?? null;
  const baseLast = snapIndex ?? storage.lastIndex();
  const lastIndex = last?.index ?? baseLast;
  const firstIndex = snapIndex === null ? storage.firstIndex() : snapIndex + 1;
  return {
    firstIndex: () => firstIndex,
    lastIndex: () => lastIndex,
    term(index: number): number | null {
      if (index > lastIndex || index < firstIndex - 1) return null;
      if (first !== undefined && index >= first.index) return entries[index - first.index]?.term ?? null;
      if (snapshot !== null) return index === snapshot.metadata.index ? snapshot.metadata.term : null;
      return index <= storage.lastIndex() ? storage.term(index) : null;
    },
  };
}

/** Whether a node's durable state is blank: no entry, no snapshot, no membership, term 0. */
export function isBlankLog(storage: LogStorage): boolean {
  const { hardState, confState } = storage.initialState();
  return (
    storage.lastIndex() === 0 &&
    hardState.term === 0 &&
    confState.voters.length === 0 &&
    confState.learners.length === 0
  );
}
