import { fnv1a32Utf8, primitivePageEntriesMax, type VersionedBytes } from '@conclave/protocol';
import { describe, expect, it } from 'vitest';
import { bytes, FsmDriver, reservedRows, text } from '../testing/driver.js';
import { entriesPrefix, holdRowKey, primitiveRowKey } from './rows.js';

/** Two map names whose rows share one hash tag, so their entries share one row prefix. */
const twin = ['m4vl8', 'mlpd6'] as const;

interface EntriesPage {
  entries: { key: string; value: Uint8Array; version: number }[];
  more: boolean;
}

function put(d: FsmDriver, name: string, key: string, value: string, extra: Record<string, unknown> = {}) {
  return d.prim('map', name, 'put', { key, value: bytes(value), ...extra });
}

/** Every entry of a map, page by page of `limit`, each page after the last key of the one before. */
function allEntries(d: FsmDriver, name: string, limit: number): { keys: string[]; pages: number } {
  const keys: string[] = [];
  let pages = 0;
  let after: string | undefined;
  for (;;) {
    const page = d.read('map', name, 'entries', { limit, ...(after === undefined ? {} : { after }) })
      .value as EntriesPage;
    pages++;
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    keys.push(...page.entries.map((e) => e.key));
    if (!page.more) return { keys, pages };
    after = page.entries.at(-1)?.key;
    expect(after).toBeDefined();
  }
}

describe('map', () => {
  it('get reads null for an absent key, and the value with its version (the Raft index of its write)', () => {
    const d = new FsmDriver();
    expect(d.read('map', 'm', 'get', { key: 'k' }).value).toBeNull();
    const written = put(d, 'm', 'k', 'v1');
    expect(written.result).toEqual({ version: written.index, previous: null });
    expect(d.read('map', 'm', 'get', { key: 'k' }).value).toEqual({
      value: bytes('v1'),
      version: written.index,
    });
    const again = put(d, 'm', 'k', 'v2');
    expect(again.result).toEqual({
      version: again.index,
      previous: { value: bytes('v1'), version: written.index },
    });
    expect(d.read('map', 'other', 'get', { key: 'k' }).value).toBeNull();
  });

  it('put with ifVersion writes only at that version (0: absent), else VERSION_MISMATCH and nothing changes', () => {
    const d = new FsmDriver();
    const created = put(d, 'm', 'k', 'a', { ifVersion: 0 });
    expect(created.error).toBeNull();
    const kvIndex = d.fsm.kvIndex();
    expect(put(d, 'm', 'k', 'b', { ifVersion: 0 }).error?.code).toBe('VERSION_MISMATCH');
    expect(put(d, 'm', 'k', 'b', { ifVersion: created.index + 1 }).error?.code).toBe('VERSION_MISMATCH');
    expect(put(d, 'm', 'absent', 'b', { ifVersion: created.index }).error?.code).toBe('VERSION_MISMATCH');
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(d.read('map', 'm', 'get', { key: 'absent' }).value).toBeNull();
    expect(put(d, 'm', 'k', 'b', { ifVersion: created.index }).error).toBeNull();
    expect(text((d.read('map', 'm', 'get', { key: 'k' }).value as VersionedBytes).value)).toBe('b');
  });

  it('insert needs the key absent: present, it is VERSION_MISMATCH and nothing changes', () => {
    const d = new FsmDriver();
    const inserted = d.prim('map', 'm', 'insert', { key: 'k', value: bytes('first') });
    expect(inserted.result).toEqual({ version: inserted.index, previous: null });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('map', 'm', 'insert', { key: 'k', value: bytes('second') })).toMatchObject({
      result: null,
      error: { code: 'VERSION_MISMATCH', message: expect.stringContaining(`version ${inserted.index}`) },
    });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(d.read('map', 'm', 'get', { key: 'k' }).value).toEqual({
      value: bytes('first'),
      version: inserted.index,
    });
  });

  it('update needs the key present: absent, it is KEY_NOT_FOUND and nothing is created', () => {
    const d = new FsmDriver();
    expect(d.prim('map', 'm', 'update', { key: 'k', value: bytes('x') })).toMatchObject({
      result: null,
      error: { code: 'KEY_NOT_FOUND' },
    });
    expect(d.read('map', 'm', 'get', { key: 'k' }).value).toBeNull();
    expect(d.fsm.kvIndex()).toBe(0);
    const created = put(d, 'm', 'k', 'a');
    expect(d.prim('map', 'm', 'update', { key: 'k', value: bytes('b'), ifVersion: 99 }).error?.code).toBe(
      'VERSION_MISMATCH',
    );
    const updated = d.prim('map', 'm', 'update', { key: 'k', value: bytes('b'), ifVersion: created.index });
    expect(updated.result).toEqual({
      version: updated.index,
      previous: { value: bytes('a'), version: created.index },
    });
  });

  it('remove deletes the entry’s row; with ifVersion only at that version; absent, it changes nothing', () => {
    const d = new FsmDriver();
    const created = put(d, 'm', 'k', 'a');
    expect(d.prim('map', 'm', 'remove', { key: 'k', ifVersion: created.index + 1 }).error?.code).toBe(
      'VERSION_MISMATCH',
    );
    const removed = d.prim('map', 'm', 'remove', { key: 'k', ifVersion: created.index });
    expect(removed.result).toEqual({
      version: removed.index,
      previous: { value: bytes('a'), version: created.index },
    });
    expect(d.fsm.getKey(primitiveRowKey({ kind: 'map', name: 'm', key: 'k' }))).toBeNull();
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('map', 'm', 'remove', { key: 'k' }).result).toEqual({ version: null, previous: null });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(reservedRows(d.fsm)).toEqual([]);
  });

  it('ephemeral entries are removed with their session; others stay', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.createSession('s2');
    d.prim('map', 'm', 'put', { key: 'e1', value: bytes('s1'), ephemeral: true }, { session: 's1' });
    d.prim('map', 'm', 'insert', { key: 'e2', value: bytes('s1'), ephemeral: true }, { session: 's1' });
    d.prim('map', 'm', 'put', { key: 'e3', value: bytes('s2'), ephemeral: true }, { session: 's2' });
    d.prim('map', 'm', 'put', { key: 'kept', value: bytes('s1') }, { session: 's1' });
    // Made durable by a later write without ephemeral.
    d.prim('map', 'm', 'put', { key: 'e4', value: bytes('s1'), ephemeral: true }, { session: 's1' });
    d.prim('map', 'm', 'update', { key: 'e4', value: bytes('durable') }, { session: 's1' });
    const rowKey = primitiveRowKey({ kind: 'map', name: 'm', key: 'e2' });
    expect(d.fsm.getKey(holdRowKey({ session: 's1', rowKey }))?.session).toBe('s1');
    d.destroySession('s1');
    expect(allEntries(d, 'm', 10).keys.sort()).toEqual(['e3', 'e4', 'kept']);
    expect(d.read('map', 'm', 'size').value).toEqual({ size: 3 });
    expect(reservedRows(d.fsm).some((e) => e.key.includes('s1') || e.session === 's1')).toBe(false);
    d.destroySession('s2');
    expect(allEntries(d, 'm', 10).keys.sort()).toEqual(['e4', 'kept']);
  });

  it('an ephemeral put needs a session', () => {
    const d = new FsmDriver();
    expect(() => put(d, 'm', 'k', 'v', { ephemeral: true })).toThrow(/needs a session/);
  });

  it('clear removes this map’s entries and their holds, and no other map’s, even one whose rows share its prefix', () => {
    const d = new FsmDriver();
    const [name, other] = twin;
    expect(fnv1a32Utf8(name)).toBe(fnv1a32Utf8(other));
    expect(entriesPrefix({ kind: 'map', name })).toBe(entriesPrefix({ kind: 'map', name: other }));
    d.createSession('s1');
    for (let i = 0; i < 10; i++) {
      put(d, name, `k${i}`, 'v');
      put(d, other, `k${i}`, 'w');
    }
    d.prim('map', name, 'put', { key: 'eph', value: bytes('v'), ephemeral: true }, { session: 's1' });
    d.prim('map', other, 'put', { key: 'eph', value: bytes('w'), ephemeral: true }, { session: 's1' });
    d.prim('set', name, 'add', { key: 'k1' });
    d.prim('map', `${name}x`, 'put', { key: 'k1', value: bytes('y') });
    expect(d.read('map', name, 'size').value).toEqual({ size: 11 });
    const cleared = d.prim('map', name, 'clear');
    expect(cleared).toMatchObject({ result: { removed: 11 }, error: null });
    expect(d.read('map', name, 'size').value).toEqual({ size: 0 });
    expect(d.read('map', name, 'entries', { limit: 5 }).value).toEqual({ entries: [], more: false });
    expect(d.read('map', other, 'size').value).toEqual({ size: 11 });
    expect(d.read('map', other, 'get', { key: 'k3' }).value).toMatchObject({ value: bytes('w') });
    expect(d.read('set', name, 'contains', { key: 'k1' }).value).toMatchObject({ contains: true });
    expect(d.read('map', `${name}x`, 'size').value).toEqual({ size: 1 });
    const holds = reservedRows(d.fsm).filter((e) => e.session === 's1');
    expect(holds.map((e) => e.key)).toEqual([
      holdRowKey({ session: 's1', rowKey: primitiveRowKey({ kind: 'map', name: other, key: 'eph' }) }),
    ]);
    // Clearing an empty map changes nothing.
    expect(d.prim('map', name, 'clear').result).toEqual({ removed: 0 });
  });

  it('size counts the entries; entries pages by after/limit return every entry exactly once', () => {
    const d = new FsmDriver();
    const [name, other] = twin;
    const keys = Array.from({ length: 23 }, (_, i) => `key-${i}`);
    for (const key of keys) {
      put(d, name, key, `v-${key}`);
      put(d, other, key, 'other');
    }
    expect(d.read('map', name, 'size').value).toEqual({ size: 23 });
    for (const limit of [1, 4, 7, 23, 50]) {
      const { keys: seen, pages } = allEntries(d, name, limit);
      expect(seen).toHaveLength(23);
      expect(new Set(seen)).toEqual(new Set(keys));
      expect(pages).toBe(Math.max(1, Math.ceil(23 / limit)));
    }
    // Each entry carries its value and version.
    const page = d.read('map', name, 'entries', { limit: 100 }).value as EntriesPage;
    for (const entry of page.entries) {
      expect(text(entry.value)).toBe(`v-${entry.key}`);
      expect(entry.version).toBe(
        d.fsm.getKey(primitiveRowKey({ kind: 'map', name, key: entry.key }))?.modifyIndex,
      );
    }
    // The page version is the newest entry's: a watch on the prefix sees any change.
    const read = d.read('map', name, 'entries', { limit: 1 });
    expect(read.version).toBe(Math.max(...page.entries.map((e) => e.version)));
    expect(read.watchPrefix).toBe(entriesPrefix({ kind: 'map', name }));
  });

  it('paging goes on past an entry removed between pages, and after the last entry is empty', () => {
    const d = new FsmDriver();
    for (let i = 0; i < 9; i++) put(d, 'm', `k${i}`, 'v');
    const first = d.read('map', 'm', 'entries', { limit: 3 }).value as EntriesPage;
    const last = first.entries.at(-1)?.key as string;
    d.prim('map', 'm', 'remove', { key: last });
    const seen = first.entries.map((e) => e.key);
    let after = last;
    for (;;) {
      const page = d.read('map', 'm', 'entries', { after, limit: 3 }).value as EntriesPage;
      seen.push(...page.entries.map((e) => e.key));
      after = page.entries.at(-1)?.key ?? after;
      if (!page.more) break;
    }
    expect(seen.sort()).toEqual(Array.from({ length: 9 }, (_, i) => `k${i}`));
    expect(d.read('map', 'm', 'entries', { after, limit: 3 }).value).toEqual({ entries: [], more: false });
  });
});

describe('map and set pages', () => {
  it('without a limit, a page holds up to primitivePageEntriesMax entries; a larger limit is cut to it', () => {
    const d = new FsmDriver();
    for (let i = 0; i < 5; i++) {
      put(d, 'small', `k${i}`, 'v');
      d.prim('set', 'small', 'add', { key: `k${i}` });
    }
    const page = d.read('map', 'small', 'entries').value as EntriesPage;
    expect(page.entries.map((e) => e.key).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(page.more).toBe(false);
    const elements = d.read('set', 'small', 'elements').value as { entries: string[]; more: boolean };
    expect(elements.entries.sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    for (let i = 0; i < primitivePageEntriesMax + 3; i++) d.prim('set', 'big', 'add', { key: `k${i}` });
    for (const args of [{}, { limit: primitivePageEntriesMax * 5 }]) {
      const first = d.read('set', 'big', 'elements', args).value as { entries: string[]; more: boolean };
      expect(first.entries).toHaveLength(primitivePageEntriesMax);
      expect(first.more).toBe(true);
      const rest = d.read('set', 'big', 'elements', { ...args, after: first.entries.at(-1) }).value as {
        entries: string[];
        more: boolean;
      };
      expect(rest).toMatchObject({ more: false });
      expect(new Set([...first.entries, ...rest.entries]).size).toBe(primitivePageEntriesMax + 3);
    }
  });
});
