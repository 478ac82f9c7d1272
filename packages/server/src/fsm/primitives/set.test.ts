import { describe, expect, it } from 'vitest';
import { FsmDriver, reservedRows } from '../testing/driver.js';
import { holdRowKey, primitiveRowKey } from './rows.js';

interface ElementsPage {
  entries: string[];
  more: boolean;
}

function allElements(d: FsmDriver, name: string, limit: number): string[] {
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = d.read('set', name, 'elements', { limit, ...(after === undefined ? {} : { after }) })
      .value as ElementsPage;
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    seen.push(...page.entries);
    if (!page.more) return seen;
    after = page.entries.at(-1);
  }
}

describe('set', () => {
  it('add puts an element in once; contains reports it with its version', () => {
    const d = new FsmDriver();
    expect(d.read('set', 'S', 'contains', { key: 'a' }).value).toEqual({ contains: false, version: 0 });
    const added = d.prim('set', 'S', 'add', { key: 'a' });
    expect(added.result).toEqual({ added: true, version: added.index });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('set', 'S', 'add', { key: 'a' }).result).toEqual({ added: false });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(d.read('set', 'S', 'contains', { key: 'a' }).value).toEqual({
      contains: true,
      version: added.index,
    });
    expect(d.read('set', 'other', 'contains', { key: 'a' }).value).toMatchObject({ contains: false });
  });

  it('remove takes an element out; absent, it changes nothing', () => {
    const d = new FsmDriver();
    d.prim('set', 'S', 'add', { key: 'a' });
    const removed = d.prim('set', 'S', 'remove', { key: 'a' });
    expect(removed.result).toEqual({ removed: true, version: removed.index });
    expect(d.read('set', 'S', 'contains', { key: 'a' }).value).toEqual({ contains: false, version: 0 });
    const kvIndex = d.fsm.kvIndex();
    expect(d.prim('set', 'S', 'remove', { key: 'a' }).result).toEqual({ removed: false });
    expect(d.fsm.kvIndex()).toBe(kvIndex);
    expect(reservedRows(d.fsm)).toEqual([]);
  });

  it('ephemeral elements go with their session; one added again without ephemeral stays', () => {
    const d = new FsmDriver();
    d.createSession('s1');
    d.prim('set', 'S', 'add', { key: 'e', ephemeral: true }, { session: 's1' });
    d.prim('set', 'S', 'add', { key: 'durable', ephemeral: true }, { session: 's1' });
    const rebound = d.prim('set', 'S', 'add', { key: 'durable' }, { session: 's1' });
    expect(rebound.result).toEqual({ added: false, version: rebound.index });
    d.prim('set', 'S', 'add', { key: 'plain' });
    expect(
      d.fsm.getKey(
        holdRowKey({ session: 's1', rowKey: primitiveRowKey({ kind: 'set', name: 'S', key: 'e' }) }),
      ),
    ).not.toBeNull();
    d.destroySession('s1');
    expect(allElements(d, 'S', 10).sort()).toEqual(['durable', 'plain']);
    expect(reservedRows(d.fsm).some((e) => e.session === 's1')).toBe(false);
  });

  it('clear removes this set’s elements only', () => {
    const d = new FsmDriver();
    for (const key of ['a', 'b', 'c']) {
      d.prim('set', 'S', 'add', { key });
      d.prim('set', 'T', 'add', { key });
      d.prim('map', 'S', 'put', { key, value: new Uint8Array([1]) });
    }
    expect(d.prim('set', 'S', 'clear').result).toEqual({ removed: 3 });
    expect(d.read('set', 'S', 'size').value).toEqual({ size: 0 });
    expect(d.read('set', 'T', 'size').value).toEqual({ size: 3 });
    expect(d.read('map', 'S', 'size').value).toEqual({ size: 3 });
  });

  it('size counts the elements; elements pages by after/limit return each exactly once', () => {
    const d = new FsmDriver();
    const keys = Array.from({ length: 17 }, (_, i) => `el-${i}`);
    for (const key of keys) d.prim('set', 'S', 'add', { key });
    expect(d.read('set', 'S', 'size').value).toEqual({ size: 17 });
    for (const limit of [1, 5, 17, 40]) {
      const seen = allElements(d, 'S', limit);
      expect(seen).toHaveLength(17);
      expect(new Set(seen)).toEqual(new Set(keys));
    }
  });
});
