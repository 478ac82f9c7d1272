import { assert } from '@conclave/raft';
import { ConclaveError } from '../errors.js';

/** What a watcher waits on, by table and index name. */
export type WatchTargetName =
  | { readonly kind: 'key'; readonly table: string; readonly index: string; readonly key: string }
  | { readonly kind: 'prefix'; readonly table: string; readonly index: string; readonly prefix: string }
  | { readonly kind: 'table'; readonly table: string };

export interface WatchLimits {
  /** Most watchers registered at once; one more is refused with OVERLOADED. */
  readonly watchersMax: number;
  /** Most targets (keys, prefixes, tables) one watcher may name. */
  readonly watchTargetsMax: number;
}

/** The index keys a committed write changed, and the tables it changed. */
export class ChangeSet {
  readonly tables = new Set<string>();
  /** `${table}\0${index}` -> the keys changed in that index (a row's old and new key). */
  readonly keys = new Map<string, Set<string>>();

  touch(table: string, index: string, key: string): void {
    this.tables.add(table);
    const slot = `${table}\u0000${index}`;
    let keys = this.keys.get(slot);
    if (keys === undefined) {
      keys = new Set();
      this.keys.set(slot, keys);
    }
    keys.add(key);
  }

  get empty(): boolean {
    return this.tables.size === 0;
  }
}

interface Watcher {
  readonly onChange: () => void;
  /** Undo each registration; run once, when the watcher fires or is cancelled. */
  readonly detach: (() => void)[];
  active: boolean;
}

/** Prefix watchers of one table+index, with the lengths in use so a key probes only those. */
interface PrefixSlot {
  readonly byPrefix: Map<string, Set<Watcher>>;
  /** prefix length -> how many distinct registered prefixes have it. */
  readonly lengths: Map<number, number>;
}

/**
 * One-shot watchers, found from a change without looking at the others: an exact key is a
 * map lookup; a changed key probes the prefix map once per distinct registered prefix
 * length (so 10,000 watchers on other keys cost nothing); a table watcher is a map lookup.
 */
export class WatchRegistry {
  private readonly exact = new Map<string, Set<Watcher>>();
  private readonly prefixes = new Map<string, PrefixSlot>();
  private readonly tables = new Map<string, Set<Watcher>>();
  private readonly watchers = new Set<Watcher>();

  constructor(private readonly limits: WatchLimits) {
    assert(
      Number.isSafeInteger(limits.watchersMax) && limits.watchersMax > 0,
      'watchersMax is a positive integer',
    );
    assert(
      Number.isSafeInteger(limits.watchTargetsMax) && limits.watchTargetsMax > 0,
      'watchTargetsMax is a positive integer',
    );
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Registers a watcher; the returned function cancels it (a no-op once it has fired). */
  add(targets: readonly WatchTargetName[], onChange: () => void): () => void {
    if (this.watchers.size >= this.limits.watchersMax) {
      throw new ConclaveError({
        code: 'OVERLOADED',
        message: `${this.watchers.size} watchers are registered (watchersMax ${this.limits.watchersMax})`,
      });
    }
    if (targets.length > this.limits.watchTargetsMax) {
      throw new ConclaveError({
        code: 'BAD_REQUEST',
        message: `a watch names ${targets.length} targets (watchTargetsMax ${this.limits.watchTargetsMax})`,
      });
    }
    const watcher: Watcher = { onChange, detach: [], active: true };
    for (const target of targets) this.register(watcher, target);
    this.watchers.add(watcher);
    return () => this.remove(watcher);
  }

  /** Removes and returns the watchers a change fires, each once, in a deterministic order. */
  take(changes: ChangeSet): (() => void)[] {
    const fired = new Set<Watcher>();
    for (const table of changes.tables) addAll(fired, this.tables.get(table));
    for (const [slot, keys] of changes.keys) {
      const prefixSlot = this.prefixes.get(slot);
      for (const key of keys) {
        addAll(fired, this.exact.get(`${slot}\u0000${key}`));
        if (prefixSlot === undefined) continue;
        for (const length of prefixSlot.lengths.keys()) {
          if (length <= key.length) addAll(fired, prefixSlot.byPrefix.get(key.slice(0, length)));
        }
      }
    }
    return this.detachAll(fired);
  }

  /** Removes and returns every watcher: the whole state was replaced. */
  takeAll(): (() => void)[] {
    return this.detachAll(new Set(this.watchers));
  }

  private detachAll(fired: Set<Watcher>): (() => void)[] {
    const callbacks: (() => void)[] = [];
    for (const watcher of fired) {
      this.remove(watcher);
      callbacks.push(watcher.onChange);
    }
    return callbacks;
  }

  private remove(watcher: Watcher): void {
    if (!watcher.active) return;
    watcher.active = false;
    for (const undo of watcher.detach) undo();
    this.watchers.delete(watcher);
  }

  private register(watcher: Watcher, target: WatchTargetName): void {
    if (target.kind === 'table') {
      this.join(watcher, this.tables, target.table);
      return;
    }
    const slot = `${target.table}\u0000${target.index}`;
    if (target.kind === 'key') {
      this.join(watcher, this.exact, `${slot}\u0000${target.key}`);
      return;
    }
    let prefixSlot = this.prefixes.get(slot);
    if (prefixSlot === undefined) {
      prefixSlot = { byPrefix: new Map(), lengths: new Map() };
      this.prefixes.set(slot, prefixSlot);
    }
    const { byPrefix, lengths } = prefixSlot;
    const length = target.prefix.length;
    const isNew = !byPrefix.has(target.prefix);
    if (!this.join(watcher, byPrefix, target.prefix)) return;
    if (isNew) lengths.set(length, (lengths.get(length) ?? 0) + 1);
    watcher.detach.push(() => {
      if (byPrefix.has(target.prefix)) return;
      const left = (lengths.get(length) ?? 0) - 1;
      assert(left >= 0, 'prefix length counts stay non-negative');
      if (left === 0) lengths.delete(length);
      else lengths.set(length, left);
      if (byPrefix.size === 0 && this.prefixes.get(slot) === prefixSlot) this.prefixes.delete(slot);
    });
  }

  /** Adds the watcher under `key`; false if it was already there (a repeated target). */
  private join(watcher: Watcher, map: Map<string, Set<Watcher>>, key: string): boolean {
    let set = map.get(key);
    if (set === undefined) {
      set = new Set();
      map.set(key, set);
    }
    if (set.has(watcher)) return false;
    set.add(watcher);
    const joined = set;
    watcher.detach.push(() => {
      joined.delete(watcher);
      if (joined.size === 0 && map.get(key) === joined) map.delete(key);
    });
    return true;
  }
}

function addAll(into: Set<Watcher>, from: Set<Watcher> | undefined): void {
  if (from === undefined) return;
  for (const watcher of from) into.add(watcher);
}
