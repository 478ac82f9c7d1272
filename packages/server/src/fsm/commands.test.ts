import { EntryType, RaftInvariantError } from '@conclave/raft';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { commandVersion, decodeCommand, encodeCommand, type FsmCommand } from './commands.js';
import { ConclaveFsm } from './fsm.js';
import { bytes } from './testing/driver.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

describe('command encoding', () => {
  const commands: FsmCommand[] = [
    { type: 'kv', op: { verb: 'set', key: 'k', value: bytes('v'), flags: 7 } },
    { type: 'kv', op: { verb: 'lock', key: 'k', value: bytes(''), session: 's' } },
    { type: 'kv', op: { verb: 'delete-cas', key: 'k', index: 0 } },
    {
      type: 'txn',
      ops: [
        { verb: 'get-tree', key: 'p/' },
        { verb: 'check-index', key: 'k', index: 12 },
        { verb: 'check-session', key: 'k' },
      ],
    },
    { type: 'txn', ops: [] },
    {
      type: 'session-create',
      session: { id: 'id', name: 'n', node: 'node', ttlSeconds: 10, behavior: 'delete', lockDelayMs: 15000 },
      createIndex: null,
    },
    {
      type: 'session-create',
      session: { id: 'id', name: '', node: 'x', ttlSeconds: 0, behavior: 'release', lockDelayMs: 0 },
      createIndex: 3,
    },
    { type: 'session-destroy', id: 'id' },
  ];

  it('round-trips every command type, never encodes to nothing, and starts with the version', () => {
    for (const command of commands) {
      const data = encodeCommand(command);
      expect(data.byteLength).toBeGreaterThan(0);
      expect((packr.unpack(data) as unknown[])[0]).toBe(commandVersion);
      expect(decodeCommand(data)).toEqual(command);
    }
  });

  it('encodes equal commands to equal bytes, whatever was encoded before', () => {
    const command = commands[0] as FsmCommand;
    const first = encodeCommand(command);
    for (const other of commands) encodeCommand(other);
    expect(encodeCommand(command)).toEqual(first);
  });

  it('decodes values into plain Uint8Arrays that do not share the entry buffer', () => {
    const data = encodeCommand({ type: 'kv', op: { verb: 'set', key: 'k', value: bytes('abc') } });
    const decoded = decodeCommand(data);
    const value = decoded.type === 'kv' ? decoded.op.value : undefined;
    expect(value?.constructor).toBe(Uint8Array);
    data.fill(0);
    expect(value).toEqual(bytes('abc'));
  });

  it('asserts on malformed commands at encode time', () => {
    expect(() => encodeCommand({ type: 'kv', op: { verb: 'get', key: 'k' } })).toThrow(RaftInvariantError);
    expect(() => encodeCommand({ type: 'kv', op: { verb: 'cas', key: 'k' } })).toThrow(RaftInvariantError);
    expect(() => encodeCommand({ type: 'txn', ops: [{ verb: 'check-index', key: 'k' }] })).toThrow(
      RaftInvariantError,
    );
    expect(() => encodeCommand({ type: 'kv', op: { verb: 'set', key: 'k', flags: -1 } })).toThrow(
      RaftInvariantError,
    );
  });

  it('a server never skips a command it cannot read: apply asserts on unknown versions and types', () => {
    const fsm = new ConclaveFsm();
    const entry = (value: unknown) => ({
      term: 1,
      index: 1,
      type: EntryType.Normal,
      data: packr.pack(value),
    });
    expect(() => fsm.apply(entry([commandVersion + 1, 'session-destroy', 'x']))).toThrow(
      /unknown command version/,
    );
    expect(() => fsm.apply(entry([commandVersion, 'node-register', 'x']))).toThrow(/unknown command type/);
    expect(() => fsm.apply(entry([commandVersion, 'kv', ['explode', 'k', null, null, null, null]]))).toThrow(
      /unknown KV verb/,
    );
    expect(() => fsm.apply(entry({ v: 1 }))).toThrow(RaftInvariantError);
    expect(fsm.appliedIndex()).toBe(0);
  });

  it('asserts that entries arrive in index order and are application commands', () => {
    const fsm = new ConclaveFsm();
    const data = encodeCommand({ type: 'session-destroy', id: 'x' });
    fsm.apply({ term: 1, index: 5, type: EntryType.Normal, data });
    expect(() => fsm.apply({ term: 1, index: 5, type: EntryType.Normal, data })).toThrow(RaftInvariantError);
    expect(() => fsm.apply({ term: 1, index: 6, type: EntryType.ConfChange, data })).toThrow(
      RaftInvariantError,
    );
  });
});
