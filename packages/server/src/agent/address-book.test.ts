import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AddressBook, addressBookFileName } from './address-book.js';

const root = mkdtempSync(join(tmpdir(), 'conclave-address-book-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'dir-'));
const logger = pino({ level: 'silent' });
const a1 = { host: '127.0.0.1', port: 8301 };
const h1 = { host: '127.0.0.1', port: 8501 };

describe('AddressBook', () => {
  it('answers what it learned, and null for what it did not', () => {
    const book = AddressBook.open({ dir: freshDir(), logger });
    expect(book.learn('s1', { raft: a1, http: h1 })).toBe(true);
    expect(book.raftAddress('s1')).toEqual(a1);
    expect(book.httpAddress('s1')).toEqual(h1);
    expect(book.raftAddress('s2')).toBeNull();
    expect(book.httpAddress('s2')).toBeNull();
  });

  it('keeps what it knows when an update leaves an address out, and takes the newest otherwise', () => {
    const book = AddressBook.open({ dir: freshDir(), logger });
    book.learn('s1', { raft: a1 });
    expect(book.get('s1')).toEqual({ raft: a1, http: null });
    expect(book.learn('s1', { http: h1 })).toBe(true);
    expect(book.learn('s1', { raft: null, http: null })).toBe(false);
    expect(book.get('s1')).toEqual({ raft: a1, http: h1 });
    expect(book.learn('s1', { raft: a1, http: h1 })).toBe(false);
    const moved = { host: '127.0.0.1', port: 9301 };
    expect(book.learn('s1', { raft: moved })).toBe(true);
    expect(book.get('s1')).toEqual({ raft: moved, http: h1 });
    // Nothing to record about a server known by no address at all.
    expect(book.learn('s9', {})).toBe(false);
    expect(book.get('s9')).toBeNull();
  });

  it('persists every change atomically and loads it at the next start', () => {
    const dir = freshDir();
    const book = AddressBook.open({ dir, logger });
    book.learn('s2', { raft: { host: '::1', port: 8302 }, http: null });
    book.learn('s1', { raft: a1, http: h1 });
    expect(existsSync(join(dir, `${addressBookFileName}.tmp`))).toBe(false);
    const again = AddressBook.open({ dir, logger });
    expect(again.entries()).toEqual([
      ['s1', { raft: a1, http: h1 }],
      ['s2', { raft: { host: '::1', port: 8302 }, http: null }],
    ]);
  });

  it('starts empty from an unreadable file, and skips malformed entries of a readable one', () => {
    const garbled = freshDir();
    writeFileSync(join(garbled, addressBookFileName), '{ not json');
    expect(AddressBook.open({ dir: garbled, logger }).size).toBe(0);
    const mixed = freshDir();
    writeFileSync(
      join(mixed, addressBookFileName),
      JSON.stringify({
        formatVersion: 1,
        members: {
          good: { raft: a1, http: null },
          'bad id!': { raft: a1, http: null },
          badPort: { raft: { host: 'h', port: 70000 }, http: null },
          nothing: { raft: null, http: null },
          notAnObject: 'h:1',
        },
      }),
    );
    const book = AddressBook.open({ dir: mixed, logger });
    expect(book.entries()).toEqual([['good', { raft: a1, http: null }]]);
    const otherVersion = freshDir();
    writeFileSync(join(otherVersion, addressBookFileName), JSON.stringify({ formatVersion: 2, members: {} }));
    expect(AddressBook.open({ dir: otherVersion, logger }).size).toBe(0);
  });

  it('stops recording new servers at entriesMax, yet still updates known ones', () => {
    const dir = freshDir();
    const book = AddressBook.open({ dir, logger, entriesMax: 2 });
    book.learn('s1', { raft: a1 });
    book.learn('s2', { raft: a1 });
    expect(book.learn('s3', { raft: a1 })).toBe(false);
    expect(book.learn('s1', { http: h1 })).toBe(true);
    expect(book.entries().map(([id]) => id)).toEqual(['s1', 's2']);
    expect(JSON.parse(readFileSync(join(dir, addressBookFileName), 'utf8')).members.s3).toBeUndefined();
  });

  it('refuses invalid ids and addresses: a caller bug, not data', () => {
    const book = AddressBook.open({ dir: freshDir(), logger });
    expect(() => book.learn('bad id', { raft: a1 })).toThrow(TypeError);
    expect(() => book.learn('s1', { raft: { host: '', port: 1 } })).toThrow(TypeError);
    expect(() => book.learn('s1', { http: { host: 'h', port: 0 } })).toThrow(TypeError);
  });
});
